"""Digest windows, cron, quiet hours and rule timing: pure time arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.delivery.schedule import (
    CronWindows,
    DeliveryPolicy,
    FixedWindows,
    QuietHours,
    clock_hour,
    standard_day_of_week,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")


def at(timezone: ZoneInfo, *parts: int) -> datetime:
    """A local wall-clock time, as an aware UTC datetime."""
    return datetime(*parts, tzinfo=timezone).astimezone(UTC)


def local(moment: datetime, timezone: ZoneInfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M %a")


@pytest.mark.parametrize(
    ("timezone", "period", "when", "start", "end"),
    [
        (SHANGHAI, "1h", (2026, 11, 26, 10, 30), "2026-11-26 10:00 Thu", "2026-11-26 11:00 Thu"),
        (KOLKATA, "1h", (2026, 11, 26, 10, 10), "2026-11-26 10:00 Thu", "2026-11-26 11:00 Thu"),
        (SHANGHAI, "30m", (2026, 11, 26, 10, 45), "2026-11-26 10:30 Thu", "2026-11-26 11:00 Thu"),
        # A period that does not divide the day: the last window ends at midnight.
        (SHANGHAI, "5h", (2026, 11, 26, 22, 0), "2026-11-26 20:00 Thu", "2026-11-27 00:00 Fri"),
        (SHANGHAI, "1d", (2026, 11, 26, 23, 59), "2026-11-26 00:00 Thu", "2026-11-27 00:00 Fri"),
        (SHANGHAI, "7d", (2026, 11, 26, 9, 0), "2026-11-23 00:00 Mon", "2026-11-30 00:00 Mon"),
    ],
)
def test_fixed_windows_window_is_aligned_to_the_local_clock(
    timezone: ZoneInfo, period: str, when: tuple[int, ...], start: str, end: str
) -> None:
    from monitor.config import parse_duration

    windows = FixedWindows(timedelta(seconds=parse_duration(period)), timezone)

    window_start, window_end = windows.window(at(timezone, *when))

    assert (local(window_start, timezone), local(window_end, timezone)) == (start, end)


def test_fixed_windows_window_start_belongs_to_the_window_and_end_to_the_next() -> None:
    windows = FixedWindows(timedelta(hours=1), SHANGHAI)
    eleven = at(SHANGHAI, 2026, 11, 26, 11, 0)

    assert windows.end_after(eleven - timedelta(microseconds=1)) == eleven
    assert windows.end_after(eleven) == eleven + timedelta(hours=1)


def test_fixed_windows_hourly_across_daylight_saving_change_stay_an_hour_long() -> None:
    windows = FixedWindows(timedelta(hours=1), NEW_YORK)
    # 2026-11-01: 01:00-02:00 happens twice in New York (EDT, then EST).
    first_one_thirty = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second_one_thirty = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST

    for moment in (first_one_thirty, second_one_thirty):
        start, end = windows.window(moment)
        assert end - start == timedelta(hours=1)
        assert start <= moment < end
    assert windows.end_after(first_one_thirty) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def test_clock_hour_in_half_hour_timezone_is_the_local_hour() -> None:
    start, end = clock_hour(datetime(2026, 11, 26, 4, 40, tzinfo=UTC), KOLKATA)  # 10:10 IST

    assert (start, end) == (
        datetime(2026, 11, 26, 4, 30, tzinfo=UTC),
        datetime(2026, 11, 26, 5, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("expression", "when", "expected"),
    [
        ("0 8 * * *", (2026, 11, 26, 10, 0), "2026-11-27 08:00 Fri"),
        ("0 8 * * *", (2026, 11, 26, 7, 59), "2026-11-26 08:00 Thu"),
        # A match at the fire time itself belongs to the next window.
        ("0 8 * * *", (2026, 11, 26, 8, 0), "2026-11-27 08:00 Fri"),
        # crontab numbering: 1 is Monday, 0 and 7 are Sunday (APScheduler 3 reads 0 as Monday).
        ("0 8 * * 1", (2026, 11, 26, 10, 0), "2026-11-30 08:00 Mon"),
        ("0 8 * * 0", (2026, 11, 26, 10, 0), "2026-11-29 08:00 Sun"),
        ("0 8 * * 7", (2026, 11, 26, 10, 0), "2026-11-29 08:00 Sun"),
        ("0 8 * * 1-5", (2026, 11, 27, 10, 0), "2026-11-30 08:00 Mon"),
        ("30 9 * * mon-fri", (2026, 11, 28, 10, 0), "2026-11-30 09:30 Mon"),
        # Both day fields restricted: either one matching fires (crontab(5)).
        ("0 8 1 * 1", (2026, 11, 26, 10, 0), "2026-11-30 08:00 Mon"),
        ("0 8 1 * 5", (2026, 11, 28, 10, 0), "2026-12-01 08:00 Tue"),
        ("*/15 * * * *", (2026, 11, 26, 10, 7), "2026-11-26 10:15 Thu"),
    ],
)
def test_cron_windows_end_after_is_the_next_fire_time_in_the_configured_timezone(
    expression: str, when: tuple[int, ...], expected: str
) -> None:
    windows = CronWindows(expression, SHANGHAI)

    end = windows.end_after(at(SHANGHAI, *when))

    assert end is not None and end.tzinfo is not None
    assert local(end, SHANGHAI) == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0-2", "sun,mon,tue"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1,3", "mon,wed"),
        ("mon-fri", "mon-fri"),
        ("last fri", "last fri"),
    ],
)
def test_standard_day_of_week_translates_crontab_numbers(field: str, expected: str) -> None:
    assert standard_day_of_week(field) == expected


@pytest.mark.parametrize(
    ("text", "clock", "inside", "end"),
    [
        ("23:00-07:00", (23, 0), True, "2026-11-27 07:00 Fri"),
        ("23:00-07:00", (2, 30), True, "2026-11-26 07:00 Thu"),
        ("23:00-07:00", (6, 59), True, "2026-11-26 07:00 Thu"),
        ("23:00-07:00", (7, 0), False, "2026-11-27 07:00 Fri"),
        ("23:00-07:00", (22, 59), False, "2026-11-27 07:00 Fri"),
        ("12:00-14:00", (13, 0), True, "2026-11-26 14:00 Thu"),
        ("12:00-14:00", (14, 0), False, "2026-11-27 14:00 Fri"),
        ("12:00-14:00", (11, 0), False, "2026-11-26 14:00 Thu"),
    ],
)
def test_quiet_hours_contains_and_end_after(
    text: str, clock: tuple[int, int], inside: bool, end: str
) -> None:
    quiet = QuietHours.parse(text, SHANGHAI)
    moment = at(SHANGHAI, 2026, 11, 26, *clock)

    assert quiet.contains(moment) is inside
    assert local(quiet.end_after(moment), SHANGHAI) == end


def test_delivery_policy_timing_without_options_is_immediate() -> None:
    timing = DeliveryPolicy.parse(SHANGHAI).timing(at(SHANGHAI, 2026, 11, 26, 10, 0))

    assert timing.immediate


def test_delivery_policy_timing_with_digest_holds_until_window_end() -> None:
    policy = DeliveryPolicy.parse(SHANGHAI, digest="1h")

    timing = policy.timing(at(SHANGHAI, 2026, 11, 26, 10, 20))

    assert timing.digest and local(timing.hold_until, SHANGHAI) == "2026-11-26 11:00 Thu"


def test_delivery_policy_timing_with_digest_ending_in_quiet_hours_waits_for_their_end() -> None:
    policy = DeliveryPolicy.parse(SHANGHAI, digest="1h", quiet_hours="23:00-07:00")

    late = policy.timing(at(SHANGHAI, 2026, 11, 26, 22, 30))  # window ends at 23:00: quiet
    night = policy.timing(at(SHANGHAI, 2026, 11, 27, 3, 10))
    dawn = policy.timing(at(SHANGHAI, 2026, 11, 27, 6, 50))  # window ends at 07:00: not quiet

    assert {late.hold_until, night.hold_until, dawn.hold_until} == {
        at(SHANGHAI, 2026, 11, 27, 7, 0)
    }


def test_delivery_policy_timing_in_quiet_hours_holds_until_they_end() -> None:
    policy = DeliveryPolicy.parse(SHANGHAI, quiet_hours="23:00-07:00", max_per_hour=5)

    quiet = policy.timing(at(SHANGHAI, 2026, 11, 26, 23, 30))
    day = policy.timing(at(SHANGHAI, 2026, 11, 26, 12, 30))

    assert not quiet.digest and quiet.hold_until == at(SHANGHAI, 2026, 11, 27, 7, 0)
    assert day.hold_until is None and day.rate_limit is not None


def test_delivery_policy_timing_with_max_per_hour_limits_the_local_clock_hour() -> None:
    policy = DeliveryPolicy.parse(SHANGHAI, max_per_hour=3, quiet_hours="23:00-07:00")

    noon = policy.timing(at(SHANGHAI, 2026, 11, 26, 12, 30)).rate_limit
    evening = policy.timing(at(SHANGHAI, 2026, 11, 26, 22, 30)).rate_limit

    assert noon is not None and noon.limit == 3
    assert (noon.window_start, noon.window_end, noon.release_at) == (
        at(SHANGHAI, 2026, 11, 26, 12, 0),
        at(SHANGHAI, 2026, 11, 26, 13, 0),
        at(SHANGHAI, 2026, 11, 26, 13, 0),
    )
    # The excess of the last hour before quiet hours waits until they end.
    assert evening is not None and evening.release_at == at(SHANGHAI, 2026, 11, 27, 7, 0)
