"""Alert latency of the daemon: from the moment a new item is served to its alert arriving.

The `latency` scenario of bench/run.py. The real daemon (`news-monitor run`) polls a farm of
`latency_feeds` feeds (bench/farm.py, 30 items each) every LATENCY_INTERVAL with up to
LATENCY_JITTER of jitter; one rule matches the farm's probe items (farm.PROBE_WORD) and
notifies a json:// webhook served by the farm, which notes when each alert arrives. After
the daemon's baseline poll of every feed, `probes` probe items are published into feeds
drawn at random, at moments drawn at random over `probe_span` seconds (a fixed seed, so
every run publishes the same plan). For each probe:

    latency        its alert's arrival at the webhook - the moment the farm began serving
                   the document that holds it (the farm's clock; one host, one clock)
    poll to alert  its alert's arrival - the first 200 answer that carried it: what the
                   daemon adds to the wait for its next poll

p50 and p95 are nearest-rank over the probes. The target: p95 <= interval + jitter + 2 s
(an item published just after a poll waits a whole interval and the jitter for the next).
Checks: every probe alerted, none twice, no alert on the baseline poll. The row's wall,
CPU and peak MB are the daemon's whole life (wait4, and the tree sampled from /proc).

    .venv/bin/python bench/run.py --only latency --quick
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from farm import PROBE_WORD, FarmProcess
from scenarios import (
    Measurement,
    Settings,
    TreeMemorySampler,
    environment,
    news_monitor,
    write_config,
)

LATENCY_INTERVAL_SECONDS = 10
LATENCY_JITTER_SECONDS = 2
# Beyond the target (interval + jitter + 2 s), how long to wait for the last alert.
GRACE_SECONDS = 60.0
BASELINE_TIMEOUT_SECONDS = 600.0
SEED = 20_261_206


def target_seconds() -> float:
    return LATENCY_INTERVAL_SECONDS + LATENCY_JITTER_SECONDS + 2.0


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def probe_plan(feeds: int, probes: int, span: float) -> list[tuple[float, int]]:
    """(seconds after the start, feed index) of each probe, in time order."""
    generator = random.Random(SEED)
    return sorted((generator.uniform(0, span), generator.randrange(feeds)) for _ in range(probes))


def alert_latency_scenario(
    workspace: Path, settings: Settings, log: Callable[[str], None]
) -> list[Measurement]:
    feeds, probes, span = settings.latency_feeds, settings.probes, settings.probe_span
    folder = workspace / "latency"
    measurement = Measurement("latency", "ours")
    log(f"  starting a farm of {feeds} feeds; daemon, baseline ...")
    with FarmProcess(feeds, 30) as farm:
        config = write_config(
            folder,
            {
                "database": "sqlite:///state/monitor.db",
                "timezone": "Asia/Shanghai",
                "defaults": {
                    "interval": f"{LATENCY_INTERVAL_SECONDS}s",
                    "jitter": f"{LATENCY_JITTER_SECONDS}s",
                },
                "feeds": [{"name": f"feed-{i}", "url": farm.url(i)} for i in range(feeds)],
                "channels": {"hook": farm.hook_url("latency")},
            },
            rules=[{"name": "probe", "any": [PROBE_WORD], "notify": ["hook"]}],
        )
        stderr_path = folder / "daemon.stderr"
        measurement.load = os.getloadavg()[0]
        with open(stderr_path, "wb") as stderr:
            started = time.perf_counter()
            daemon = subprocess.Popen(
                news_monitor("run", "--config", str(config)),
                cwd=folder,
                env=environment(settings),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            sampler = TreeMemorySampler(daemon.pid)
            sampler.start()
            usage = None
            try:
                _wait_for_baseline(farm, feeds, daemon)
                log(
                    f" done in {time.perf_counter() - started:.1f} s; "
                    f"{probes} probes over {span:g} s\n"
                )
                baseline_alerts = len(farm.hook("latency")["keys"])
                published = _publish(farm, probe_plan(feeds, probes, span))
                _wait_for_alerts(farm, published, daemon)
                daemon.send_signal(signal.SIGTERM)
                timer = threading.Timer(60, daemon.kill)
                timer.start()
                try:
                    _, status, usage = os.wait4(daemon.pid, 0)
                finally:
                    timer.cancel()
                daemon.returncode = os.waitstatus_to_exitcode(status)
            finally:
                if usage is None:  # something failed before the daemon was stopped
                    daemon.kill()
                    daemon.wait()
                sampler.stop()
            measurement.wall = time.perf_counter() - started
        measurement.cpu = usage.ru_utime + usage.ru_stime
        measurement.process_rss_mb = usage.ru_maxrss / 1024
        measurement.rss_mb = max(measurement.process_rss_mb, sampler.peak_rss_kb / 1024)
        measurement.tree_pss_mb = sampler.peak_pss_kb / 1024
        measurement.processes = sampler.most_processes
        measurement.children_cpu = sampler.children_cpu_seconds()
        if daemon.returncode != 0:
            tail = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
            measurement.error = (
                f"exit {daemon.returncode}: " + " | ".join(tail.splitlines()[-3:])[-300:]
            )
        _score(measurement, farm.hook("latency"), farm.probes(), published, baseline_alerts)
    log(f"  latency    ours       {brief(measurement)}\n")
    return [measurement]


def _wait_for_baseline(farm: FarmProcess, feeds: int, daemon: subprocess.Popen) -> None:
    """Until every feed has answered the daemon once (its baseline poll)."""
    deadline = time.monotonic() + BASELINE_TIMEOUT_SECONDS
    while farm.stats().get("200", 0) < feeds:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited ({daemon.returncode}) before its baseline")
        if time.monotonic() > deadline:
            raise RuntimeError("no baseline poll of every feed in time")
        time.sleep(0.2)


def _publish(farm: FarmProcess, plan: list[tuple[float, int]]) -> dict[str, float]:
    """Publish each probe at its moment; return {probe id: when it began to be served}."""
    published = {}
    started = time.monotonic()
    for offset, feed in plan:
        delay = started + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        answer = farm.publish_probe(feed)
        published[answer["id"]] = answer["published"]
    return published


def _wait_for_alerts(
    farm: FarmProcess, published: dict[str, float], daemon: subprocess.Popen
) -> None:
    """Until every probe's alert arrived, the daemon ended, or the grace ran out."""
    wanted = {f"probe|{probe_id}" for probe_id in published}
    deadline = time.monotonic() + target_seconds() + GRACE_SECONDS
    while time.monotonic() < deadline and daemon.poll() is None:
        if wanted <= farm.hook("latency")["times"].keys():
            return
        time.sleep(0.2)


def _score(
    m: Measurement,
    hook: dict,
    probes: dict[str, dict],
    published: dict[str, float],
    baseline_alerts: int,
) -> None:
    times = hook["times"]
    latencies, poll_to_alert = [], []
    for probe_id, moment in published.items():
        arrived = times.get(f"probe|{probe_id}")
        if arrived is None:
            continue
        latencies.append(arrived - moment)
        first_served = probes.get(probe_id, {}).get("first_served")
        if first_served:
            poll_to_alert.append(arrived - first_served)
    duplicates = sum(n - 1 for n in Counter(hook["keys"]).values() if n > 1)
    m.expect(baseline_alerts == 0, f"{baseline_alerts} alerts on the baseline poll")
    m.expect(
        len(latencies) == len(published), f"{len(published) - len(latencies)} probes not alerted"
    )
    m.expect(duplicates == 0, f"{duplicates} alerts received twice")
    m.counters = {"probes": len(published), "alerted": len(latencies), "duplicates": duplicates}
    if latencies:
        m.counters |= {
            "p50": nearest_rank(latencies, 50),
            "p95": nearest_rank(latencies, 95),
            "max": max(latencies),
        }
        m.notes.append(
            f"served to alert p50 {m.counters['p50']:.2f} s, p95 {m.counters['p95']:.2f} s, "
            f"max {m.counters['max']:.2f} s ({len(latencies)}/{len(published)} probes)"
        )
    if poll_to_alert:
        m.counters |= {
            "poll_to_alert_p50": nearest_rank(poll_to_alert, 50),
            "poll_to_alert_p95": nearest_rank(poll_to_alert, 95),
        }
        m.notes.append(
            f"poll to alert p50 {m.counters['poll_to_alert_p50']:.2f} s, "
            f"p95 {m.counters['poll_to_alert_p95']:.2f} s"
        )


def brief(m: Measurement) -> str:
    if m.error:
        return f"FAILED {m.error}"
    text = "; ".join(m.notes) or "no alerts"
    return text + (f"; CHECK: {'; '.join(m.checks)}" if m.checks else "")
