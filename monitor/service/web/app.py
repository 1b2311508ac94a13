"""The web view as a Starlette application: its routes (pages.py) under `http.base_path`,
its templates, the authentication and headers around it (guards.py), and its errors.

Templates are Jinja2 with autoescape on: every stored text (a title, an error, a rule
name) is escaped wherever it appears, an SVG label included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates

from monitor import __version__
from monitor.config import SECRETS, HttpConfig
from monitor.model import StoreError
from monitor.service.http import Health, Metrics
from monitor.service.web.guards import BasicAuthentication, SecurityHeaders
from monitor.service.web.pages import ROUTE_PATHS, WebPages
from monitor.service.web.reports import WebSources

logger = logging.getLogger(__name__)

# Paths a supervisor or Prometheus reads without credentials.
OPEN_PATHS = ("/healthz", "/metrics")


def build_app(
    sources: WebSources,
    settings: HttpConfig,
    *,
    health: Callable[[], Health],
    metrics: Metrics,
    before_scrape: Callable[[], None] = lambda: None,
) -> Starlette:
    """Given what the web view reads and the `http:` settings, return its ASGI app."""
    base = settings.base_path
    templates = Jinja2Templates(
        env=template_environment(base), context_processors=[_shown_in(sources)]
    )
    pages = WebPages(
        sources,
        templates,
        search_time_limit_seconds=settings.search_timeout_seconds,
        health=health,
        metrics=metrics,
        before_scrape=before_scrape,
    )
    routes: list[Route | Mount] = list(pages.routes())
    if base:
        # /news itself leads to /news/ (a relative Location: right behind any proxy).
        routes = [
            Route(base, lambda request: RedirectResponse(f"{base}/", status_code=308)),
            Mount(base, routes=routes),
        ]
    middleware = [Middleware(SecurityHeaders)]
    if settings.auth_user is not None and settings.auth_password is not None:
        middleware.append(
            Middleware(
                BasicAuthentication,
                user=settings.auth_user,
                password=settings.auth_password,
                open_paths=frozenset(f"{base}{path}" for path in OPEN_PATHS),
            )
        )
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, StoreError: _store_error},
    )


def template_environment(base_path: str) -> jinja2.Environment:
    """The Jinja2 environment of the pages: the package's templates, autoescaped, with
    `path_for(name, **query)` giving a page's path under the base path."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def path_for(name: str, **query: Any) -> str:
        shown = {key: value for key, value in query.items() if value not in (None, "")}
        path = f"{base_path}{ROUTE_PATHS[name]}"
        return f"{path}?{urlencode(shown)}" if shown else path

    environment.globals.update(path_for=path_for, version=__version__)
    environment.filters.update(href=safe_href, number=_number)
    return environment


def safe_href(link: str | None) -> str | None:
    """Given a stored link, return it if a browser may follow it (http or https), else None:
    a `javascript:` link in a feed must not become a link on the page."""
    if not link:
        return None
    try:
        scheme = urlsplit(link.strip()).scheme.lower()
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def _number(value: int) -> str:
    return f"{value:,}"


def _shown_in(sources: WebSources) -> Callable[[Request], dict[str, Any]]:
    """The template helpers that depend on the running configuration: times in its zone."""

    def context(request: Request) -> dict[str, Any]:
        zone = sources.zone
        now = sources.clock()
        return {
            "zone": zone.key,
            "local": lambda moment: _local(moment, zone),
            "relative": lambda moment: _relative(moment, now),
            "masked": SECRETS.apply,
        }

    return context


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _relative(moment: datetime | None, now: datetime) -> str:
    """ "in 4 min", "3 h ago": how far a time is from now, roughly."""
    if moment is None:
        return ""
    seconds = (moment.astimezone(UTC) - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        amount = f"{round(size)} s"
    elif size < 3600:
        amount = f"{round(size / 60)} min"
    elif size < 2 * 86400:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _wants_json(request: Request) -> bool:
    return "/api/" in request.url.path


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if _wants_json(request):
        return JSONResponse({"error": error.detail}, status_code=error.status_code)
    return PlainTextResponse(f"{error.detail}\n", status_code=error.status_code)


async def _store_error(request: Request, error: Exception) -> Response:
    # The database is down or locked past its timeout: say so, and let the client retry.
    message = SECRETS.apply(str(error))
    logger.warning("http path=%s status=503 error=%r", request.url.path, message)
    text = f"the database cannot be read right now: {message}"
    if _wants_json(request):
        return JSONResponse({"error": text}, status_code=503)
    return PlainTextResponse(text + "\n", status_code=503)
