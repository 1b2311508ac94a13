"""The web view's endpoints: each page, its JSON twin under /api/, and the probes.

Every endpoint only reads (GET and HEAD; anything else is 405). Pages that read the store
are plain functions, which Starlette runs on its worker threads; a search runs on threads
of its own, at most SEARCH_THREADS at once, and stops at its time limit. Bad parameters
(a query that does not parse, a limit that is no number) answer 400 with the reason.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from monitor.config import parse_duration
from monitor.service.http import Health, Metrics
from monitor.service.search import SearchOutcome, SearchQueryError, search_articles
from monitor.service.web.reports import (
    WebSources,
    feed_document,
    match_document,
    read_feeds,
    read_matches,
    read_overview,
    read_stories,
    search_document,
    story_document,
)

logger = logging.getLogger(__name__)

ROUTE_PATHS = {
    "overview": "/",
    "matches": "/matches",
    "feeds": "/feeds",
    "stories": "/stories",
    "search": "/search",
    "api_matches": "/api/matches",
    "api_feeds": "/api/feeds",
    "api_stories": "/api/stories",
    "api_search": "/api/search",
    "healthz": "/healthz",
    "metrics": "/metrics",
}
MATCHES_PER_PAGE = 50
MAX_MATCHES_PER_PAGE = 500
SEARCH_RESULTS = 20
MAX_SEARCH_RESULTS = 200
DEFAULT_SEARCH_SINCE = "30d"
# Searches running at once; more wait their turn. Each is CPU work on one core.
SEARCH_THREADS = 2


class WebPages:
    """The endpoints, bound to what they read."""

    def __init__(
        self,
        sources: WebSources,
        templates: Jinja2Templates,
        *,
        search_time_limit_seconds: float,
        health: Callable[[], Health],
        metrics: Metrics,
        before_scrape: Callable[[], None],
    ) -> None:
        self.sources = sources
        self.templates = templates
        self.search_time_limit_seconds = search_time_limit_seconds
        self._health = health
        self._before_scrape = before_scrape
        self._metrics_registry = metrics.registry  # from now on polls are counted
        self._search_limiter: anyio.CapacityLimiter | None = None  # made in the event loop

    def routes(self) -> list[Route]:
        endpoints: dict[str, Callable[[Request], Any]] = {
            "overview": self.overview,
            "matches": self.matches,
            "feeds": self.feeds,
            "stories": self.stories,
            "search": self.search,
            "api_matches": self.api_matches,
            "api_feeds": self.api_feeds,
            "api_stories": self.api_stories,
            "api_search": self.api_search,
            "healthz": self.healthz,
            "metrics": self.metrics,
        }
        return [
            Route(ROUTE_PATHS[name], endpoint, name=name, methods=["GET", "HEAD"])
            for name, endpoint in endpoints.items()
        ]

    # --- pages ---------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        return self._page(request, "overview.html", overview=read_overview(self.sources))

    def matches(self, request: Request) -> Response:
        rule, before, limit = _match_parameters(request)
        hits = read_matches(self.sources, rule=rule, before=before, limit=limit)
        older = hits[-1].hit_id if len(hits) == limit else None
        return self._page(
            request, "matches.html", hits=hits, rule=rule, limit=limit, older=older, before=before
        )

    def feeds(self, request: Request) -> Response:
        return self._page(request, "feeds.html", feeds=read_feeds(self.sources))

    def stories(self, request: Request) -> Response:
        return self._page(request, "stories.html", stories=read_stories(self.sources))

    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        feed, since_text, limit = _search_parameters(request)
        outcome: SearchOutcome | None = None
        error: str | None = None
        if query:
            try:
                outcome = await self._search(query, feed, since_text, limit)
            except SearchQueryError as problem:
                error = str(problem)
        return self._page(
            request,
            "search.html",
            status_code=400 if error else 200,
            query=query,
            feed=feed,
            since=since_text,
            outcome=outcome,
            error=error,
            time_limit_seconds=self.search_time_limit_seconds,
        )

    # --- the JSON API --------------------------------------------------------------

    def api_matches(self, request: Request) -> Response:
        rule, before, limit = _match_parameters(request)
        hits = read_matches(self.sources, rule=rule, before=before, limit=limit)
        return _json({"matches": [match_document(hit) for hit in hits]})

    def api_feeds(self, request: Request) -> Response:
        return _json({"feeds": [feed_document(report) for report in read_feeds(self.sources)]})

    def api_stories(self, request: Request) -> Response:
        return _json({"stories": [story_document(story) for story in read_stories(self.sources)]})

    async def api_search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            raise HTTPException(400, "q is required: a query in the rule query language")
        feed, since_text, limit = _search_parameters(request)
        try:
            outcome = await self._search(query, feed, since_text, limit)
        except SearchQueryError as problem:
            return _json({"error": str(problem)}, status_code=400)
        return _json(search_document(query, outcome))

    # --- probes --------------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        try:
            health = self._health()
        except Exception as error:  # a health check that fails is an unhealthy service
            logger.exception("http healthz status=error")
            health = Health(False, {"error": type(error).__name__})
        document = {"healthy": health.healthy, **health.details}
        return Response(
            json.dumps(document, default=str) + "\n",
            status_code=200 if health.healthy else 503,
            media_type="application/json",
        )

    def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        try:
            self._before_scrape()
        except Exception:  # stale gauges beat no metrics at all
            logger.warning("http metrics status=partial", exc_info=True)
        return Response(generate_latest(self._metrics_registry), media_type=CONTENT_TYPE_LATEST)

    # --- helpers -------------------------------------------------------------------

    def _page(
        self, request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> Response:
        page = name.removesuffix(".html")
        return self.templates.TemplateResponse(
            request, name, {"page": page, **context}, status_code=status_code
        )

    async def _search(
        self, query: str, feed: str | None, since_text: str, limit: int
    ) -> SearchOutcome:
        if self._search_limiter is None:
            self._search_limiter = anyio.CapacityLimiter(SEARCH_THREADS)
        since = self.sources.clock() - timedelta(seconds=_duration(since_text, "since"))
        run = functools.partial(
            search_articles,
            self.sources.store,
            query,
            since=since,
            feed=feed,
            limit=limit,
            time_limit_seconds=self.search_time_limit_seconds,
        )
        outcome = await anyio.to_thread.run_sync(run, limiter=self._search_limiter)
        if not outcome.complete:
            logger.info(
                "search status=time_limit limit_seconds=%g results=%d articles_checked=%d",
                self.search_time_limit_seconds,
                len(outcome.results),
                outcome.articles_checked,
            )
        return outcome


def _json(document: dict[str, Any], status_code: int = 200) -> Response:
    # ensure_ascii=False: Chinese titles stay readable in the API's output.
    body = json.dumps(document, ensure_ascii=False, default=str)
    return Response(body, status_code=status_code, media_type="application/json")


def _match_parameters(request: Request) -> tuple[str | None, int | None, int]:
    rule = request.query_params.get("rule") or None
    before = _whole_number(request, "before", None, 1, None)
    limit = _whole_number(request, "limit", MATCHES_PER_PAGE, 1, MAX_MATCHES_PER_PAGE)
    assert limit is not None
    return rule, before, limit


def _search_parameters(request: Request) -> tuple[str | None, str, int]:
    feed = request.query_params.get("feed") or None
    since_text = request.query_params.get("since") or DEFAULT_SEARCH_SINCE
    _duration(since_text, "since")
    limit = _whole_number(request, "limit", SEARCH_RESULTS, 1, MAX_SEARCH_RESULTS)
    assert limit is not None
    return feed, since_text, limit


def _whole_number(
    request: Request, name: str, default: int | None, minimum: int, maximum: int | None
) -> int | None:
    text = request.query_params.get(name)
    if not text:
        return default
    if not text.isdigit() or int(text) < minimum or (maximum is not None and int(text) > maximum):
        allowed = f"from {minimum} to {maximum}" if maximum is not None else f"from {minimum}"
        raise HTTPException(400, f"{name} must be a whole number {allowed}")
    return int(text)


def _duration(text: str, name: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise HTTPException(400, f"{name}: {error}") from None
