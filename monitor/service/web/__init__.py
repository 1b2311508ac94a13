"""The web view inside the daemon: a read-only Starlette app served by uvicorn (server.py),
its pages and JSON API (pages.py, reports.py), search (search.py), charts drawn as inline
SVG (charts.py, templates/charts.html), HTTP Basic authentication and security headers
(guards.py). /healthz and /metrics are served by it too.
"""

from monitor.service.web.reports import WebSources
from monitor.service.web.server import WebServer, start_web_server

__all__ = ["WebServer", "WebSources", "start_web_server"]
