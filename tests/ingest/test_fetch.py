"""Tests for monitor.ingest.fetch against real local HTTP servers (no mocks, no network)."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from feed_server import FeedServer

from monitor import __version__
from monitor.ingest.fetch import Fetcher
from monitor.ingest.freshness import freshness_seconds
from monitor.model import FetchError

RSS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<rss version="2.0"><channel><title>t</title>'
    b"<item><title>\xe9\x9f\xa9\xe6\x97\xa5</title><link>https://example.org/1</link></item>"
    b"</channel></rss>\n"
)
ETAG = '"v1"'
LAST_MODIFIED = "Tue, 01 Apr 2025 10:00:00 GMT"
SECRET = "s3cr3t-t0ken"
MiB = 1024 * 1024
# A gzip member header with FCOMMENT set: zlib consumes comment bytes without output.
GZIP_HEADER_WITH_COMMENT = b"\x1f\x8b\x08\x10\x00\x00\x00\x00\x00\xff"


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    fetcher = Fetcher()
    yield fetcher
    fetcher.close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (it was just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch_error(fetcher: Fetcher, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
    return caught.value


# -- 200, conditional GET, 304 ---------------------------------------------------------------


def test_fetch_first_request_returns_body_and_validators(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS, etag=ETAG, last_modified=LAST_MODIFIED)

    result = fetcher.fetch(server.url("/rss"))

    assert result.status == 200
    assert result.body == RSS
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.url == server.url("/rss")
    assert result.permanent_redirect_to is None
    assert not result.not_modified
    assert result.elapsed_seconds >= 0
    _, headers = server.requests[-1]
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers


def test_fetch_with_matching_etag_returns_not_modified(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS, etag=ETAG, last_modified=LAST_MODIFIED)
    first = fetcher.fetch(server.url("/rss"))

    second = fetcher.fetch(server.url("/rss"), etag=first.etag, last_modified=first.last_modified)

    assert second.not_modified
    assert second.status == 304
    assert second.body is None
    assert second.etag is None
    assert second.last_modified is None
    _, headers = server.requests[-1]
    assert headers["If-None-Match"] == ETAG
    assert headers["If-Modified-Since"] == LAST_MODIFIED


def test_fetch_with_matching_last_modified_only_returns_not_modified(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS, last_modified=LAST_MODIFIED)

    result = fetcher.fetch(server.url("/rss"), last_modified=LAST_MODIFIED)

    assert result.not_modified
    assert result.body is None


def test_fetch_with_old_etag_after_feed_update_returns_new_body(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS, etag=ETAG)
    first = fetcher.fetch(server.url("/rss"))
    updated = RSS.replace(b"<title>t</title>", b"<title>updated</title>")
    server.add_feed("/rss", updated, etag='"v2"')

    second = fetcher.fetch(server.url("/rss"), etag=first.etag)

    assert second.status == 200
    assert second.body == updated
    assert second.etag == '"v2"'


def test_fetch_response_headers_content_type_and_location_passed_through(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed(
        "/atom",
        RSS,
        content_type="application/atom+xml",
        headers={"Content-Location": "https://example.org/feed.atom"},
    )

    result = fetcher.fetch(server.url("/atom"))

    assert result.content_type == "application/atom+xml"
    assert result.content_location == "https://example.org/feed.atom"


def test_fetch_without_optional_headers_returns_empty_strings_and_none(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.set_response("/bare", 200, RSS)

    result = fetcher.fetch(server.url("/bare"))

    assert result.content_type == ""
    assert result.content_location == ""
    assert result.etag is None
    assert result.last_modified is None


def test_fetch_non_ascii_path_is_percent_encoded(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/cn/%E4%BA%9A%E6%B4%B2/rss", RSS)

    result = fetcher.fetch(server.url("/cn/亚洲/rss"))

    assert result.body == RSS


def test_fetch_cache_control_max_age_is_reported(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed(
        "/rss", RSS, etag=ETAG, headers={"Cache-Control": "public, Max-Age=600, must-revalidate"}
    )

    fresh = fetcher.fetch(server.url("/rss"))
    unchanged = fetcher.fetch(server.url("/rss"), etag=ETAG)

    assert fresh.max_age_seconds == 600
    assert unchanged.not_modified
    assert unchanged.max_age_seconds == 600


def test_fetch_not_modified_reuses_the_connection(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/rss", RSS, etag=ETAG)
    fetcher.fetch(server.url("/rss"))

    results = [fetcher.fetch(server.url("/rss"), etag=ETAG) for _ in range(5)]

    assert all(result.not_modified for result in results)
    assert server.connections == 1  # a 304 hands its connection back to the pool


@pytest.mark.parametrize("cache_control", [None, "no-cache", "max-age=soon", "max-age=-5"])
def test_fetch_without_usable_max_age_reports_none(
    fetcher: Fetcher, server: FeedServer, cache_control: str | None
) -> None:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    server.set_response("/rss", 200, RSS, headers)

    result = fetcher.fetch(server.url("/rss"))

    assert result.max_age_seconds is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Control": "max-age=60", "Expires": "Thu, 26 Nov 2026 09:00:00 GMT"}, 60),
        (
            {"Date": "Thu, 26 Nov 2026 08:00:00 GMT", "Expires": "Thu, 26 Nov 2026 08:15:00 GMT"},
            900,
        ),
        ({"Expires": "Thu, 26 Nov 2026 08:10:00 GMT"}, 600),  # no Date: against now
        ({"Date": "Thu, 26 Nov 2026 08:00:00 GMT", "Expires": "0"}, None),  # "already expired"
        (
            {"Date": "Thu, 26 Nov 2026 08:00:00 GMT", "Expires": "Thu, 26 Nov 2026 07:00:00 GMT"},
            None,
        ),
        ({}, None),
    ],
)
def testfreshness_seconds_prefers_max_age_then_expires(headers, expected) -> None:
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    assert freshness_seconds(headers, now=now) == expected


def test_fetch_expires_header_is_reported_as_max_age(fetcher: Fetcher, server: FeedServer) -> None:
    expires = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    server.set_response("/rss", 200, RSS, {"Expires": expires})

    result = fetcher.fetch(server.url("/rss"))

    assert result.max_age_seconds is not None and result.max_age_seconds > 3600


# -- request headers -------------------------------------------------------------------------


def test_fetch_default_user_agent_contains_version(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/rss", RSS)

    fetcher.fetch(server.url("/rss"))

    _, headers = server.requests[-1]
    assert headers["User-Agent"] == f"news-monitor/{__version__}"


def test_fetch_custom_user_agent_is_sent(server: FeedServer) -> None:
    server.add_feed("/rss", RSS)
    fetcher = Fetcher(user_agent="analyst-bot/2 (+https://example.org/bot)")
    try:
        fetcher.fetch(server.url("/rss"))
    finally:
        fetcher.close()

    _, headers = server.requests[-1]
    assert headers["User-Agent"] == "analyst-bot/2 (+https://example.org/bot)"


def test_fetch_accept_header_prefers_feed_types(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/rss", RSS)

    fetcher.fetch(server.url("/rss"))

    _, headers = server.requests[-1]
    assert headers["Accept"].startswith("application/rss+xml, application/atom+xml")


# -- body size cap ---------------------------------------------------------------------------


def test_fetch_gzip_encoded_body_returns_decoded_bytes(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss.gz", RSS, gzip_encoded=True)

    result = fetcher.fetch(server.url("/rss.gz"))

    assert result.body == RSS


def test_fetch_gzip_bomb_raises_too_large(fetcher: Fetcher, server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * (50 * MiB))
    server.set_response("/bomb", 200, bomb, {"Content-Encoding": "gzip"})

    error = fetch_error(fetcher, server.url("/bomb"))

    assert str(error) == f"body larger than {5 * MiB} bytes"
    assert error.status is None


def test_fetch_content_length_over_cap_raises_before_reading(
    fetcher: Fetcher, server: FeedServer
) -> None:
    # The server announces 1 GB and sends nothing: reading would end in a timeout, so a
    # size error proves the Content-Length was checked first.
    server.set_response("/huge", 200, b"", {"Content-Length": str(1024 * MiB)})

    error = fetch_error(fetcher, server.url("/huge"), timeout_seconds=5)

    assert str(error) == f"body larger than {5 * MiB} bytes"


def test_fetch_endless_body_raises_too_large(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_endless("/endless")

    error = fetch_error(fetcher, server.url("/endless"), max_bytes=MiB)

    assert str(error) == f"body larger than {MiB} bytes"


def test_fetch_body_exactly_at_cap_returns_it(fetcher: Fetcher, server: FeedServer) -> None:
    server.set_response("/exact", 200, b"x" * 1000)

    result = fetcher.fetch(server.url("/exact"), max_bytes=1000)

    assert result.body == b"x" * 1000


# -- total deadline --------------------------------------------------------------------------


def test_fetch_dripping_body_raises_timeout(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_drip("/drip", prefix=b"<rss>", chunk=b" ", interval_seconds=0.1)

    error = fetch_error(fetcher, server.url("/drip"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"


def test_fetch_silent_after_headers_raises_timeout(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_drip("/silent", prefix=b"<rss>", interval_seconds=3600)

    error = fetch_error(fetcher, server.url("/silent"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"


def test_fetch_dripping_headers_raises_timeout(fetcher: Fetcher, server: FeedServer) -> None:
    # Every recv returns within the read timeout, so only the watchdog can stop this.
    server.add_slow_headers("/slow-headers", interval_seconds=0.1)

    error = fetch_error(fetcher, server.url("/slow-headers"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"


def test_fetch_gzip_padding_trickle_raises_timeout(fetcher: Fetcher, server: FeedServer) -> None:
    # urllib3's read1 keeps reading while decoded output is empty, so without the watchdog
    # this would never return control to the deadline check.
    server.add_drip(
        "/gzip-trickle",
        prefix=GZIP_HEADER_WITH_COMMENT,
        chunk=b"a",
        interval_seconds=0.05,
        headers={"Content-Encoding": "gzip"},
    )

    error = fetch_error(fetcher, server.url("/gzip-trickle"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"


def test_fetch_response_held_by_server_raises_timeout(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/held", RSS, blocking=True)

    error = fetch_error(fetcher, server.url("/held"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"


# -- HTTP errors and Retry-After -------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500, 502])
def test_fetch_error_status_raises_with_status(
    fetcher: Fetcher, server: FeedServer, status: int
) -> None:
    server.set_response("/broken", status, b"<html>oops</html>")

    error = fetch_error(fetcher, server.url("/broken"))

    assert error.status == status
    assert str(error) == f"HTTP {status}"
    assert error.retry_after_seconds is None


def test_fetch_429_with_delta_retry_after_reports_seconds(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.set_response("/limited", 429, b"slow down", {"Retry-After": "120"})

    error = fetch_error(fetcher, server.url("/limited"))

    assert error.status == 429
    assert str(error) == "HTTP 429"
    assert error.retry_after_seconds == 120
    assert server.hits("/limited") == 1  # no retry behind our back


def test_fetch_503_with_http_date_retry_after_reports_seconds(
    fetcher: Fetcher, server: FeedServer
) -> None:
    retry_at = datetime.now(UTC) + timedelta(hours=1)
    server.set_response("/down", 503, b"", {"Retry-After": format_datetime(retry_at, True)})

    error = fetch_error(fetcher, server.url("/down"))

    assert error.status == 503
    assert error.retry_after_seconds is not None
    assert 3500 < error.retry_after_seconds <= 3600


def test_fetch_503_with_past_http_date_retry_after_reports_zero(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.set_response("/down", 503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    error = fetch_error(fetcher, server.url("/down"))

    assert error.retry_after_seconds == 0


def test_fetch_503_with_garbage_retry_after_reports_none(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.set_response("/down", 503, b"", {"Retry-After": "soon-ish"})

    error = fetch_error(fetcher, server.url("/down"))

    assert error.status == 503
    assert error.retry_after_seconds is None


# -- redirects -------------------------------------------------------------------------------


def test_fetch_redirect_loop_raises_too_many_redirects(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/loop", "/loop")

    error = fetch_error(fetcher, server.url("/loop"))

    assert str(error) == "too many redirects"
    assert server.hits("/loop") == 6  # the first request and five redirects


def test_fetch_five_redirects_follows_them(fetcher: Fetcher, server: FeedServer) -> None:
    for hop in range(5):
        server.add_redirect(f"/hop{hop}", f"/hop{hop + 1}")
    server.add_redirect("/hop5", "/rss")  # a sixth redirect would be one too many
    server.add_feed("/rss", RSS)

    result = fetcher.fetch(server.url("/hop1"))

    assert result.body == RSS
    assert result.url == server.url("/rss")


def test_fetch_301_sets_permanent_redirect_to_final_url(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/old", "/new", status=301)
    server.add_feed("/new", RSS)

    result = fetcher.fetch(server.url("/old"))

    assert result.body == RSS
    assert result.url == server.url("/new")
    assert result.permanent_redirect_to == server.url("/new")


def test_fetch_308_chain_sets_permanent_redirect_to_final_url(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/a", "/b", status=308)
    server.add_redirect("/b", server.url("/c"), status=301)
    server.add_feed("/c", RSS)

    result = fetcher.fetch(server.url("/a"))

    assert result.permanent_redirect_to == server.url("/c")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_fetch_temporary_redirect_leaves_permanent_redirect_to_none(
    fetcher: Fetcher, server: FeedServer, status: int
) -> None:
    server.add_redirect("/today", "/rss", status=status)
    server.add_feed("/rss", RSS)

    result = fetcher.fetch(server.url("/today"))

    assert result.url == server.url("/rss")
    assert result.permanent_redirect_to is None


def test_fetch_301_then_302_reports_only_the_permanent_hop(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/old", "/new", status=301)
    server.add_redirect("/new", "/today", status=302)
    server.add_feed("/today", RSS)

    result = fetcher.fetch(server.url("/old"))

    assert result.url == server.url("/today")
    assert result.permanent_redirect_to == server.url("/new")


def test_fetch_302_then_301_reports_no_permanent_redirect(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/feed", "/mirror", status=302)
    server.add_redirect("/mirror", "/rss", status=301)
    server.add_feed("/rss", RSS)

    result = fetcher.fetch(server.url("/feed"))

    assert result.url == server.url("/rss")
    assert result.permanent_redirect_to is None


def test_fetch_304_after_permanent_redirect_reports_it(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/old", "/new", status=301)
    server.add_feed("/new", RSS, etag=ETAG)

    result = fetcher.fetch(server.url("/old"), etag=ETAG)

    assert result.not_modified
    assert result.permanent_redirect_to == server.url("/new")


def test_fetch_redirect_to_file_url_raises(
    fetcher: Fetcher, server: FeedServer, tmp_path: Path
) -> None:
    local = tmp_path / "private.xml"
    local.write_bytes(RSS)
    server.add_redirect("/sneaky", local.as_uri())

    error = fetch_error(fetcher, server.url("/sneaky"))

    assert str(error) == "redirect to an unsupported URL scheme"


def test_fetch_redirect_without_location_raises_with_status(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.set_response("/nowhere", 302)

    error = fetch_error(fetcher, server.url("/nowhere"))

    assert error.status == 302


def test_fetch_redirect_carries_cookies_set_on_the_way(
    fetcher: Fetcher, server: FeedServer
) -> None:
    # Consent walls set a cookie on a redirect and expect it on the next request.
    server.set_response(
        "/consent", 302, headers={"Location": "/rss", "Set-Cookie": "consent=yes; Path=/"}
    )
    server.add_feed("/rss", RSS)

    fetcher.fetch(server.url("/consent"))

    _, headers = server.requests[-1]
    assert headers["Cookie"] == "consent=yes"


def test_fetch_redirect_on_same_origin_keeps_userinfo_credentials(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_redirect("/private", server.url("/private-rss"))
    server.add_feed("/private-rss", RSS)
    url = server.url("/private").replace("http://", "http://reader:pw@")

    fetcher.fetch(url)

    _, headers = server.requests[-1]
    assert headers["Authorization"].startswith("Basic ")


def test_fetch_redirect_to_other_origin_drops_userinfo_credentials(
    fetcher: Fetcher, server: FeedServer
) -> None:
    with FeedServer() as elsewhere:
        elsewhere.add_feed("/rss", RSS)
        server.add_redirect("/private", elsewhere.url("/rss"))
        url = server.url("/private").replace("http://", "http://reader:pw@")

        fetcher.fetch(url)

        _, headers = elsewhere.requests[-1]
    assert "Authorization" not in headers


# -- network errors --------------------------------------------------------------------------


def test_fetch_closed_port_raises_connection_refused(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, f"http://127.0.0.1:{closed_port()}/rss")

    assert str(error) == "connection refused"
    assert error.status is None


def test_fetch_unsupported_scheme_raises(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, "ftp://example.org/rss")

    assert "unsupported URL scheme" in str(error)


# -- file:// ---------------------------------------------------------------------------------


def test_fetch_file_url_returns_file_bytes(fetcher: Fetcher, tmp_path: Path) -> None:
    local = tmp_path / "亚洲 feed.xml"  # the URL is percent-encoded; the path is not
    local.write_bytes(RSS)

    result = fetcher.fetch(local.as_uri(), etag=ETAG)

    assert result.body == RSS
    assert result.status is None
    assert not result.not_modified
    assert result.url == local.as_uri()
    assert result.etag is None


def test_fetch_missing_file_raises_file_not_found(fetcher: Fetcher, tmp_path: Path) -> None:
    error = fetch_error(fetcher, (tmp_path / "missing.xml").as_uri())

    assert str(error) == "file not found"


def test_fetch_file_over_cap_raises_too_large(fetcher: Fetcher, tmp_path: Path) -> None:
    local = tmp_path / "big.xml"
    local.write_bytes(b"x" * 2000)

    error = fetch_error(fetcher, local.as_uri(), max_bytes=1000)

    assert str(error) == "body larger than 1000 bytes"


# -- politeness ------------------------------------------------------------------------------


def test_fetch_six_concurrent_to_one_origin_keeps_two_in_flight(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/slow", RSS, blocking=True)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(fetcher.fetch, server.url("/slow")) for _ in range(6)]
        # Let requests through one at a time; each time, the slot it frees must be taken
        # by one queued fetch, and never by more.
        for released in range(1, 7):
            waiting = min(2, 6 - released + 1)
            assert server.wait_for(lambda waiting=waiting: server.blocked == waiting), (
                f"expected {waiting} requests at the server, saw {server.blocked} "
                f"(most at once: {server.max_in_flight})"
            )
            server.release()
            assert server.wait_for(lambda released=released: server.completed >= released)
        results = [future.result(timeout=30) for future in futures]

    assert [result.body for result in results] == [RSS] * 6
    assert server.max_in_flight == 2


def test_fetch_busy_origin_does_not_block_other_origin(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/slow", RSS, blocking=True)
    with FeedServer() as other, ThreadPoolExecutor(max_workers=4) as pool:
        other.add_feed("/rss", RSS)
        futures = [pool.submit(fetcher.fetch, server.url("/slow")) for _ in range(4)]
        assert server.wait_for(lambda: server.blocked == 2)

        result = fetcher.fetch(other.url("/rss"), timeout_seconds=5)

        assert result.body == RSS
        server.release(4)
        assert all(future.result(timeout=30).body == RSS for future in futures)


def test_fetch_no_free_slot_before_deadline_raises_timeout(server: FeedServer) -> None:
    server.add_feed("/slow", RSS, blocking=True)
    fetcher = Fetcher(per_origin_limit=1)
    holder = threading.Thread(target=fetcher.fetch, args=(server.url("/slow"),), daemon=True)
    holder.start()
    try:
        assert server.wait_for(lambda: server.blocked == 1)

        error = fetch_error(fetcher, server.url("/slow"), timeout_seconds=1)

        assert str(error).startswith("timed out after 1s waiting for a turn")
        assert server.hits("/slow") == 1
    finally:
        server.release()
        holder.join(timeout=30)
        fetcher.close()


def test_fetcher_per_origin_limit_below_one_raises_value_error() -> None:
    with pytest.raises(ValueError, match="per_origin_limit"):
        Fetcher(per_origin_limit=0)


def test_close_then_fetch_uses_a_fresh_session(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/rss", RSS)
    fetcher.fetch(server.url("/rss"))

    fetcher.close()
    result = fetcher.fetch(server.url("/rss"))

    assert result.body == RSS


# -- secrets in URLs -------------------------------------------------------------------------


def _failing_url(case: str, server: FeedServer) -> str:
    """Return a URL carrying SECRET in userinfo and query that fails in the given way."""
    base = f"http://127.0.0.1:{closed_port()}" if case == "refused" else server.base_url
    paths = {
        "refused": "/rss",
        "status": "/broken",
        "redirect_loop": "/loop",
        "too_large": "/endless",
        "timeout": "/drip",
        "bad_redirect": "/sneaky",
    }
    return f"{base}{paths[case]}?token={SECRET}".replace("http://", f"http://user:{SECRET}@")


@pytest.mark.parametrize(
    "case", ["refused", "status", "redirect_loop", "too_large", "timeout", "bad_redirect"]
)
def test_fetch_secret_in_url_error_and_traceback_omit_it(
    fetcher: Fetcher, server: FeedServer, case: str
) -> None:
    server.set_response("/broken", 500)
    server.add_redirect("/loop", f"/loop?token={SECRET}")
    server.add_endless("/endless")
    server.add_drip("/drip", interval_seconds=0.1)
    server.add_redirect("/sneaky", f"gopher://user:{SECRET}@example.org/?token={SECRET}")

    error = fetch_error(fetcher, _failing_url(case, server), timeout_seconds=1, max_bytes=MiB)

    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    # A logger printing the traceback must not reveal it through a chained exception.
    assert SECRET not in "".join(traceback.format_exception(error))


def test_fetch_result_repr_omits_url_and_body(fetcher: Fetcher, server: FeedServer) -> None:
    server.add_feed("/rss", RSS)

    result = fetcher.fetch(server.url(f"/rss?token={SECRET}"))

    assert SECRET not in repr(result)
    assert "rss version" not in repr(result)
    assert result.url.endswith(f"?token={SECRET}")


# -- one watchdog for every fetch --------------------------------------------------------------


def _watchdog_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "fetch-watchdog"]


def test_fetch_watchdog_still_cuts_a_drip_after_many_fetches(
    fetcher: Fetcher, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS, etag=ETAG)
    server.add_slow_headers("/slow-headers", interval_seconds=0.1)
    for _ in range(300):
        assert fetcher.fetch(server.url("/rss"), etag=ETAG).not_modified

    error = fetch_error(fetcher, server.url("/slow-headers"), timeout_seconds=1)

    assert str(error) == "timed out after 1s"
    # One long-lived thread, not a timer thread per fetch.
    assert len(_watchdog_threads()) == 1
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


def test_fetch_watchdog_keeps_few_finished_deadlines(fetcher: Fetcher, server: FeedServer) -> None:
    from monitor.ingest.deadline import WATCHDOG

    server.add_feed("/rss", RSS, etag=ETAG)
    for _ in range(1200):
        fetcher.fetch(server.url("/rss"), etag=ETAG, timeout_seconds=600)

    # Finished deadlines 10 minutes from expiry are swept, not kept until then.
    assert WATCHDOG.pending() < 600


def test_fetch_concurrent_deadlines_each_cut_at_their_own_time(server: FeedServer) -> None:
    server.add_slow_headers("/slow-a", interval_seconds=0.1)
    server.add_slow_headers("/slow-b", interval_seconds=0.1)
    fetcher = Fetcher(per_origin_limit=4)

    def timed(path: str, seconds: float) -> tuple[str, float]:
        started = time.monotonic()
        error = fetch_error(fetcher, server.url(path), timeout_seconds=seconds)
        return str(error), time.monotonic() - started

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # The later deadline is armed first: the earlier one must still wake the watchdog.
            late = pool.submit(timed, "/slow-a", 2.5)
            time.sleep(0.2)
            early = pool.submit(timed, "/slow-b", 0.5)
            early_message, early_elapsed = early.result(timeout=10)
            late_message, late_elapsed = late.result(timeout=10)
    finally:
        fetcher.close()

    assert early_message == "timed out after 0.5s" and early_elapsed < 1.5
    assert late_message == "timed out after 2.5s" and 2.3 < late_elapsed < 4


# -- the environment: proxies, NO_PROXY, netrc ---------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NETRC"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_fetch_uses_http_proxy_from_environment(
    clean_environment: pytest.MonkeyPatch, server: FeedServer
) -> None:
    # The feed server answers absolute-URI requests too, so it can stand in for a proxy.
    server.add_feed("/rss", RSS)
    clean_environment.setenv("HTTP_PROXY", server.base_url)
    fetcher = Fetcher()
    try:
        result = fetcher.fetch("http://feeds.invalid/rss", timeout_seconds=5)
    finally:
        fetcher.close()

    assert result.body == RSS
    assert server.hits("/rss") == 1


def test_fetch_no_proxy_bypasses_the_proxy(
    clean_environment: pytest.MonkeyPatch, server: FeedServer
) -> None:
    server.add_feed("/rss", RSS)
    clean_environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    clean_environment.setenv("NO_PROXY", "127.0.0.1")
    fetcher = Fetcher()
    try:
        result = fetcher.fetch(server.url("/rss"), timeout_seconds=5)
        # A host NO_PROXY does not name still goes to the (dead) proxy.
        error = fetch_error(fetcher, "http://feeds.invalid/rss", timeout_seconds=5)
    finally:
        fetcher.close()

    assert result.body == RSS
    assert str(error) in {"proxy error", "connection refused"}


def test_fetch_sends_netrc_credentials(
    clean_environment: pytest.MonkeyPatch, server: FeedServer, tmp_path: Path
) -> None:
    server.add_feed("/rss", RSS)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password n3trc-pw\n")
    netrc.chmod(0o600)
    clean_environment.setenv("NETRC", str(netrc))
    fetcher = Fetcher()
    try:
        fetcher.fetch(server.url("/rss"))
    finally:
        fetcher.close()

    headers = server.requests[-1][1]
    expected = "Basic " + base64.b64encode(b"reader:n3trc-pw").decode()
    assert headers.get("Authorization") == expected
