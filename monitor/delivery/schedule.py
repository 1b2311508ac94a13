"""When an alert goes out: digest windows, cron, quiet hours and the clock hour.

Pure arithmetic on an aware `now` in the configured timezone; nothing here reads a clock or
the database. A rule's options become a DeliveryPolicy once per configuration; for each
match, `policy.timing(now)` says whether its delivery goes out now, waits in a batch until
a given time, or is counted against the rule's hourly limit (monitor.store.database applies that).

- `digest: 1h` (any duration): windows aligned to the clock in the configured timezone.
  A period of a day or less starts at local midnight and repeats (1h: 10:00-11:00; 30m:
  10:00-10:30; 5h: 00:00, 05:00, ..., 20:00-24:00, the last window of the day cut at
  midnight). A whole number of days counts days from Monday 0001-01-01 (7d: Monday to
  Monday). Anything else is aligned to the Unix epoch in local time.
- `digest: "0 8 * * *"`: a 5-field crontab in the configured timezone with crontab's own
  meaning: day of week 0 and 7 are Sunday (APScheduler 3 alone would read 0 as Monday),
  and when both day of month and day of week are restricted, either one matching fires.
  A window ends at the next fire time strictly after the match.
- `quiet_hours: "23:00-07:00"`: local times, the start included and the end excluded; a
  start after the end wraps midnight.
- A digest whose window ends during quiet hours is sent when the quiet hours end, together
  with the windows that end before then. The excess of `max_per_hour` likewise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from monitor.config import parse_duration, parse_quiet_hours
from monitor.model import RateLimit, Timing

DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)
# Standard crontab numbering: 0 and 7 are Sunday.
_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC_WEEKDAYS = re.compile(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?")


# --------------------------------------------------------------------------- windows


def local_midnight(day: date, timezone: tzinfo) -> datetime:
    """Given a calendar date, return the aware UTC instant its day starts in `timezone`."""
    return datetime.combine(day, time(0), tzinfo=timezone).astimezone(UTC)


@dataclass(frozen=True)
class FixedWindows:
    """Back-to-back windows of a fixed length, aligned to the local clock."""

    period: timedelta
    timezone: tzinfo

    def __post_init__(self) -> None:
        if self.period <= timedelta(0):
            raise ValueError("a window must be longer than 0s")

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """Given an aware time, return the (start, end) of the window holding it; the start
        belongs to the window, the end to the next one."""
        local_day = now.astimezone(self.timezone).date()
        if self.period <= DAY:
            day_start = local_midnight(local_day, self.timezone)
            day_end = local_midnight(local_day + DAY, self.timezone)
            count = (now - day_start) // self.period
            start = day_start + self.period * count
            return start, min(start + self.period, day_end)
        if self.period % DAY == timedelta(0):
            days = self.period // DAY
            ordinal = local_day.toordinal()
            first = ordinal - (ordinal - 1) % days
            return (
                local_midnight(date.fromordinal(first), self.timezone),
                local_midnight(date.fromordinal(first + days), self.timezone),
            )
        offset = now.astimezone(self.timezone).utcoffset() or timedelta(0)
        epoch = datetime(1970, 1, 1, tzinfo=UTC) - offset
        start = epoch + self.period * ((now - epoch) // self.period)
        return start, start + self.period

    def end_after(self, now: datetime) -> datetime:
        return self.window(now)[1]


@dataclass(frozen=True)
class CronWindows:
    """Windows ending at each fire time of a crontab expression."""

    expression: str
    timezone: tzinfo
    trigger: Any = field(compare=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.trigger is None:
            object.__setattr__(self, "trigger", crontab_trigger(self.expression, self.timezone))

    def end_after(self, now: datetime) -> datetime | None:
        """Given an aware time, return the first fire time strictly after it (None if the
        expression never fires again, such as 30 February)."""
        fire_time = self.trigger.get_next_fire_time(None, now + MICROSECOND)
        return fire_time.astimezone(UTC) if fire_time is not None else None


def crontab_trigger(expression: str, timezone: tzinfo) -> Any:
    """Given a 5-field crontab expression, return an APScheduler trigger that fires as cron
    would. Raise ValueError if it is not one."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 cron fields, got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    day_of_week = standard_day_of_week(day_of_week)

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=timezone,
        )

    if day != "*" and day_of_week != "*":
        # crontab(5): "if both fields are restricted, the command runs when either matches".
        return OrTrigger([trigger(day, "*"), trigger("*", day_of_week)])
    return trigger(day, day_of_week)


def standard_day_of_week(text: str) -> str:
    """Given crontab's day-of-week field (0-7, Sunday being 0 and 7), return the same days
    as APScheduler 3 understands them (names: it reads 0 as Monday). Names and
    APScheduler's own forms (`last fri`) pass through."""
    if text == "*":
        return text
    parts = []
    for part in text.split(","):
        match = _NUMERIC_WEEKDAYS.fullmatch(part.strip())
        if match is None:
            parts.append(part)
            continue
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (int(value) for value in span.split("-"))
        else:
            first = int(span)
            last = 7 if match.group(2) else first
        if not (0 <= first <= last <= 7) or step < 1:
            raise ValueError(f"invalid day of week {part!r}")
        days = sorted({number % 7 for number in range(first, last + 1, step)})
        parts.extend(_CRON_WEEKDAYS[number] for number in days)
    return ",".join(parts)


def parse_digest(text: str, timezone: tzinfo) -> FixedWindows | CronWindows:
    """Given a rule's `digest:` (a duration or a 5-field cron expression), return its windows.
    Raise ValueError if it is neither."""
    if len(text.split()) == 5:
        return CronWindows(text, timezone)
    return FixedWindows(timedelta(seconds=parse_duration(text)), timezone)


def clock_hour(now: datetime, timezone: tzinfo) -> tuple[datetime, datetime]:
    """Given an aware time, return the local clock hour holding it (10:00-11:00)."""
    return FixedWindows(timedelta(hours=1), timezone).window(now)


# --------------------------------------------------------------------------- quiet hours


@dataclass(frozen=True)
class QuietHours:
    """A daily local time range; the start is inside, the end outside."""

    start: time
    end: time
    timezone: tzinfo

    @classmethod
    def parse(cls, text: str, timezone: tzinfo) -> QuietHours:
        """Given "HH:MM-HH:MM", return the quiet hours. Raise ValueError if malformed."""
        start, end = parse_quiet_hours(text)
        return cls(start, end, timezone)

    def contains(self, moment: datetime) -> bool:
        clock = moment.astimezone(self.timezone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def end_after(self, moment: datetime) -> datetime:
        """Given an aware time, return the first end of quiet hours strictly after it."""
        local_day = moment.astimezone(self.timezone).date()
        for day in (local_day - DAY, local_day, local_day + DAY, local_day + 2 * DAY):
            candidate = datetime.combine(day, self.end, tzinfo=self.timezone).astimezone(UTC)
            if candidate > moment:
                return candidate
        raise AssertionError("unreachable: an end of quiet hours falls within two days")

    def release_time(self, moment: datetime) -> datetime:
        """Given when something would be sent, return when it may be: then, or at the end
        of the quiet hours holding that time."""
        return self.end_after(moment) if self.contains(moment) else moment


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class DeliveryPolicy:
    """A rule's timing options, parsed once per configuration."""

    timezone: tzinfo
    digest: FixedWindows | CronWindows | None = None
    quiet_hours: QuietHours | None = None
    max_per_hour: int | None = None

    @classmethod
    def parse(
        cls,
        timezone: tzinfo,
        *,
        digest: str | None = None,
        quiet_hours: str | None = None,
        max_per_hour: int | None = None,
    ) -> DeliveryPolicy:
        """Given a rule's options as configured, return its policy. Raise ValueError if one
        is malformed (the configuration loader has checked them already)."""
        return cls(
            timezone=timezone,
            digest=parse_digest(digest, timezone) if digest else None,
            quiet_hours=QuietHours.parse(quiet_hours, timezone) if quiet_hours else None,
            max_per_hour=max_per_hour,
        )

    def timing(self, now: datetime) -> Timing:
        """Given when a match was made, return when its deliveries go out."""
        if self.digest is not None:
            window_end = self.digest.end_after(now)
            if window_end is not None:
                return Timing(hold_until=self._after_quiet_hours(window_end), digest=True)
        if self.quiet_hours is not None and self.quiet_hours.contains(now):
            return Timing(hold_until=self.quiet_hours.end_after(now))
        if self.max_per_hour is not None:
            start, end = clock_hour(now, self.timezone)
            return Timing(
                rate_limit=RateLimit(self.max_per_hour, start, end, self._after_quiet_hours(end))
            )
        return Timing()

    def _after_quiet_hours(self, moment: datetime) -> datetime:
        return self.quiet_hours.release_time(moment) if self.quiet_hours else moment
