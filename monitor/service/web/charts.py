"""Charts as geometry: bars, grid lines and labels in a viewBox, drawn as inline SVG by the
templates (templates/charts.html), so pages need no JavaScript and every label is escaped
like any other text.

Two kinds: the overview's stacked bars (matches per rule per day, a colour per rule) and a
feed's small bars (new articles per day).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

# Okabe-Ito: told apart by people with any common colour blindness; grey is the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHERS_COLOUR = "#9a9a9a"
OTHERS_NAME = "other rules"
SPARK_COLOUR = "#0072B2"
# A day without anything still shows: a sliver on the baseline.
EMPTY_DAY_HEIGHT = 1.0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # the tooltip: "2026-11-26 korea-japan: 3"


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"  # SVG text-anchor


@dataclass(frozen=True)
class LegendEntry:
    colour: str
    name: str
    total: int


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    description: str  # what the chart shows, for screen readers and as its title
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...] = ()
    grid: tuple[tuple[float, float, float], ...] = ()  # (x1, x2, y) of each grid line
    legend: tuple[LegendEntry, ...] = ()
    total: int = 0


def stacked_daily_chart(
    days: Sequence[date],
    counts: Mapping[str, Mapping[date, int]],
    *,
    description: str,
    width: float = 720,
    height: float = 220,
) -> Chart:
    """Given days and counts by series and day (a rule's matches), return stacked bars, one
    per day: the series with the most in all get a colour each, the rest share grey."""
    totals = {name: sum(by_day.values()) for name, by_day in counts.items()}
    ranked = sorted((name for name in totals if totals[name]), key=lambda n: (-totals[n], n))
    coloured = ranked[: len(PALETTE)] if len(ranked) <= len(PALETTE) else ranked[: len(PALETTE) - 1]
    others = [name for name in ranked if name not in coloured]
    series: list[tuple[str, str, dict[date, int]]] = [
        (name, PALETTE[index], dict(counts[name])) for index, name in enumerate(coloured)
    ]
    if others:
        merged: dict[date, int] = {}
        for name in others:
            for day, count in counts[name].items():
                merged[day] = merged.get(day, 0) + count
        series.append((f"{OTHERS_NAME} ({len(others)})", OTHERS_COLOUR, merged))

    left, right, top, bottom = 38.0, 6.0, 8.0, 24.0
    plot_width, plot_height = width - left - right, height - top - bottom
    day_totals = [sum(values.get(day, 0) for _, _, values in series) for day in days]
    scale_top = nice_ceiling(max(day_totals, default=0))
    slot = plot_width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        x = left + index * slot + slot * 0.14
        base = top + plot_height
        for name, colour, values in series:
            count = values.get(day, 0)
            if not count:
                continue
            bar_height = plot_height * count / scale_top
            base -= bar_height
            label = f"{day.isoformat()} {name}: {count}"
            bars.append(Bar(x, base, slot * 0.72, bar_height, colour, label))
    fractions = (0.0, 0.5, 1.0)  # of the scale: a grid line each, labelled when whole
    grid = tuple((left, width - right, top + plot_height * (1 - f)) for f in fractions)
    labels = [
        Label(left - 4, top + plot_height * (1 - f) + 4, _number(scale_top * f), "end")
        for f in fractions
        if float(scale_top * f).is_integer()
    ]
    for index, day in enumerate(days):
        # Every seventh day from the last, so today is always labelled.
        if (len(days) - 1 - index) % 7 == 0:
            labels.append(Label(left + (index + 0.5) * slot, height - 6, day.strftime("%m-%d")))
    legend = tuple(
        LegendEntry(colour, name, sum(values.values())) for name, colour, values in series
    )
    return Chart(
        width,
        height,
        description,
        tuple(bars),
        tuple(labels),
        grid,
        legend,
        total=sum(day_totals),
    )


def small_daily_chart(
    days: Sequence[date],
    counts: Mapping[date, int],
    *,
    description: str,
    unit: str,
    width: float = 150,
    height: float = 30,
) -> Chart:
    """Given days and a count per day (a feed's new articles), return one small bar per day
    scaled to the largest, each with its day and count as its tooltip."""
    values = [counts.get(day, 0) for day in days]
    peak = max(values, default=0) or 1
    slot = width / max(len(days), 1)
    bars = []
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        bar_height = max(EMPTY_DAY_HEIGHT, (height - 2) * value / peak)
        colour = SPARK_COLOUR if value else OTHERS_COLOUR
        label = f"{day.isoformat()}: {value} {unit}"
        bars.append(
            Bar(
                index * slot + slot * 0.1,
                height - bar_height,
                slot * 0.8,
                bar_height,
                colour,
                label,
            )
        )
    return Chart(width, height, description, tuple(bars), total=sum(values))


def nice_ceiling(value: float) -> float:
    """Given the largest value to show, return the top of the scale: 1, 2, 4, 6, 8 or 10
    times a power of ten, at least 1, so that its half is a whole number from 2 on."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
