"""One HTTP GET of a feed, and the rules for the next hop when the answer is a redirect.

Why requests' lower layer and not `Session.get`: `Session.send` reads the whole body of
every 3xx response (`resp.content`, even with `stream=True` and `allow_redirects=False`,
because it precomputes `Response.next`), with no size cap and no total deadline, so a
hostile redirect could stream for ever. So each hop is built with `Session.prepare_request`
and `Session.merge_environment_settings` (cookies, netrc, proxies with NO_PROXY, the CA
bundle variables: everything `Session.request` applies) and sent with the session's adapter,
body unread; the fetcher follows redirects itself, which also lets each hop count against
the per-origin limit of the host it actually goes to and lets a redirect to `file://` be
refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.cookies import extract_cookies_to_jar
from requests.utils import get_auth_from_url, requote_uri

from monitor.ingest.deadline import Deadline, WatchedAdapter
from monitor.ingest.network_errors import network_error_message
from monitor.model import FetchError

# Connecting is quick or hopeless; a long connect wait only eats the budget for the body.
MAX_CONNECT_TIMEOUT_SECONDS = 10.0

# Feeds first, then generic XML, then anything: some servers send RSS as text/html.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)

HTTP_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def new_session(user_agent: str) -> requests.Session:
    """Return a session for feed requests: our User-Agent and Accept, deadline-aware
    connections, and no retries."""
    session = requests.Session()
    # max_retries=0: the scheduler polls again later, and urllib3 retries would both break
    # the deadline and sleep for a server-chosen Retry-After inside a worker.
    adapter = WatchedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": user_agent, "Accept": ACCEPT})
    return session


class PreparedRequests:
    """What `Session.prepare_request` and `Session.merge_environment_settings` return for a
    feed's GET, kept from one poll to the next.

    Why: on a 304 they cost about as much as everything else the client does (they copy the
    cookie jar, look for ~/.netrc and scan the whole environment for proxy variables twice,
    on every request), and the daemon's steady state is almost only 304s. Their results
    depend only on the URL, the conditional headers, the credentials, the session's
    settings and the environment, none of which change between polls of an unchanged feed.

    A request is reused only by a session whose cookie jar is empty (feeds seldom set
    cookies; a session that holds some prepares each request, so its Cookie header is
    current). One request per URL is kept, so the cache grows with the feeds, not the
    polls. Environment settings are kept per origin: NO_PROXY and the proxy choice depend
    on the scheme, host and port only. `clear()` (Fetcher.close) makes the environment be
    read again. Shared by the fetcher's threads without a lock: a race only prepares twice.
    """

    def __init__(self) -> None:
        self._requests: dict[str, tuple[object, requests.PreparedRequest]] = {}
        self._environments: dict[tuple[str, str, int], Mapping[str, Any]] = {}

    def clear(self) -> None:
        """Forget everything, so the environment and ~/.netrc are read again."""
        self._requests = {}
        self._environments = {}

    def request(
        self,
        session: requests.Session,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
    ) -> requests.PreparedRequest:
        """Return a GET of `url` prepared by `session`, with these headers and credentials."""
        if session.cookies:
            return session.prepare_request(requests.Request("GET", url, headers, auth=auth))
        key = (tuple(headers.items()), auth)
        found = self._requests.get(url)
        if found is None or found[0] != key:
            prepared = session.prepare_request(requests.Request("GET", url, headers, auth=auth))
            found = self._requests[url] = (key, prepared)
        # A copy: the adapter and the cookie code may be handed the same request by two
        # threads at once.
        return found[1].copy()

    def environment(self, session: requests.Session, url: str) -> Mapping[str, Any]:
        """Return `session.merge_environment_settings` for a streamed request to `url`."""
        origin = origin_of(url)
        settings = self._environments.get(origin)
        if settings is None:
            settings = session.merge_environment_settings(url, {}, True, None, None)
            self._environments[origin] = settings
        return settings


def send(
    session: requests.Session,
    prepared_requests: PreparedRequests,
    url: str,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
    deadline: Deadline,
) -> requests.Response:
    """Send one GET without following redirects and return the response, body unread.

    Raise FetchError for network failures and timeouts.
    """
    remaining = deadline.remaining()
    if remaining <= 0:
        raise FetchError(deadline.message())
    connect_timeout = min(remaining, MAX_CONNECT_TIMEOUT_SECONDS)
    try:
        prepared = prepared_requests.request(session, url, headers, auth)
        prepared_url = prepared.url or url
        settings = prepared_requests.environment(session, prepared_url)
        response = session.get_adapter(prepared_url).send(
            prepared,
            stream=True,
            timeout=(connect_timeout, remaining),
            verify=settings["verify"],
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
    except (requests.exceptions.InvalidURL, urllib3.exceptions.LocationValueError):
        raise FetchError("invalid URL") from None
    except requests.RequestException as error:
        # `from None`: the original exception's text includes the URL, and a traceback
        # printed by the caller's logger would show it.
        raise FetchError(network_error_message(error, deadline, connect_timeout)) from None
    # Only when there are cookies to keep: extracting runs the jar's cookie policy even for
    # a response that sets none, a measurable share of a 304.
    if "Set-Cookie" in response.headers or "Set-Cookie2" in response.headers:
        extract_cookies_to_jar(session.cookies, prepared, response.raw)
    return response


def resolve_redirect(current_url: str, location: str) -> str:
    """Given the URL that redirected and its Location, return the absolute next URL.

    Raise FetchError for anything but http(s): a feed server must not be able to make us
    read a local file.
    """
    next_url = urljoin(current_url, requote_uri(location))
    if urlsplit(next_url).scheme.lower() not in HTTP_SCHEMES:
        raise FetchError("redirect to an unsupported URL scheme")
    return next_url


def auth_for_redirect(
    session: requests.Session,
    current_url: str,
    next_url: str,
    auth: tuple[str, str] | None,
) -> tuple[str, str] | None:
    """Return the credentials to send to `next_url`, with requests' rules for stripping.

    Credentials from URL userinfo survive a same-host redirect (http to https included)
    and are dropped when the host changes, as requests does for its own redirects.
    """
    if session.should_strip_auth(current_url, next_url):
        return None
    if urlsplit(next_url).username is not None:
        return None  # the next URL brings its own userinfo
    if auth is not None:
        return auth
    username, password = get_auth_from_url(current_url)
    return (username, password) if username or password else None


def origin_of(url: str) -> tuple[str, str, int]:
    """Given an http(s) URL, return its origin (scheme, host, port) for the politeness limit.

    Raise FetchError if the URL is not http(s), or has no host or a bad port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FetchError("not an http(s) URL")
    if not parts.hostname:
        raise FetchError("invalid URL: no host")
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]
