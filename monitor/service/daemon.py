"""Scheduler jobs, signals and reload: decides *when* each stage runs, never *how*."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.config import SECRETS, Config, FeedConfig
from monitor.delivery import (
    DeliveryReport,
    Notifier,
    Sender,
    SendSettings,
    send_due_deliveries,
    template_chooser,
)
from monitor.ingest import (
    ArticlePages,
    Fetcher,
    ParsePool,
    default_worker_count,
)
from monitor.model import ConfigError, StoreError
from monitor.service.backlog import (
    schedule_checkpoints,
    schedule_search_index,
    schedule_story_grouping,
    work_after_cycle,
)
from monitor.service.cluster import (
    RETENTION_ASK_EVERY_SECONDS,
    RETENTION_EVERY_SECONDS,
    STATISTICS_EVERY_SECONDS,
    Lease,
    send_timeout_seconds,
    statistics_job,
)
from monitor.service.configuration import load_config
from monitor.service.feed_states import FLUSH_INTERVAL_SECONDS, FeedStates
from monitor.service.http import Metrics
from monitor.service.liveness import InstanceLiveness
from monitor.service.next_poll import ReasonsLogged, next_poll
from monitor.service.pipeline import PollResult, Rules, refresh_feed, story_grouping
from monitor.service.poll_log import log_poll
from monitor.service.poll_schedule import PollSchedule, poll_thread_count
from monitor.service.sdnotify import ServiceManager
from monitor.service.shared_schedule import SharedPollSchedule
from monitor.service.signals import install_daemon_signals
from monitor.store import (
    FeedState,
    FeedStateUpdate,
    InstanceIdentity,
    Store,
    StoryGrouping,
    claim_is_live,
    heartbeat_interval_seconds,
    new_claimant,
)

if TYPE_CHECKING:
    from monitor.service.web import WebServer

logger = logging.getLogger(__name__)

# The heartbeat job (six times per cluster.lease, at most every 10 s: see
# monitor.store.instances) proves the scheduler runs jobs and the database takes writes: it
# records this instance's last_seen_at, which `health` and `status` read, and renews its
# lease. The systemd watchdog ping and /healthz depend on the same heartbeat being fresh.
# Pruning old articles (retention:) runs once a day, the first time soon after start.
RETENTION_INTERVAL_SECONDS = 86400.0
RETENTION_FIRST_DELAY_SECONDS = 60.0
# The sender's regular tick; batch releases and retries also wake it at their time.
SENDER_INTERVAL = timedelta(seconds=10)
CONFIG_WATCH_INTERVAL_SECONDS = 2.0
# Parser processes (see parse_pool.py) pay for themselves from this many enabled feeds:
# below it, polls seldom overlap and a worker would mostly hold memory.
PARSE_WORKERS_MIN_FEEDS = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """Everything derived from one valid configuration; replaced as a whole on reload."""

    config: Config
    rules: Rules
    notifier: Notifier
    timezone: ZoneInfo
    stories: StoryGrouping | None  # how new articles group into stories; None: they do not

    @classmethod
    def build(cls, config: Config, *, shared: bool = False) -> Runtime:
        """`shared`: the database is shared by several instances, whose sends must end
        within their lease (monitor.service.cluster)."""
        lease_seconds = config.cluster.lease_seconds if shared else None
        return cls(
            config=config,
            rules=Rules.compile(config.rules, ZoneInfo(config.timezone)),
            notifier=Notifier(config.channels, timeout_seconds=send_timeout_seconds(lease_seconds)),
            timezone=ZoneInfo(config.timezone),
            stories=story_grouping(config.stories),
        )


@dataclass(frozen=True)
class CycleReport:
    polls: tuple[PollResult, ...]
    delivery: DeliveryReport

    @property
    def every_feed_failed(self) -> bool:
        """Whether there were feeds to poll and none could be polled."""
        return bool(self.polls) and not any(poll.ok for poll in self.polls)


class Monitor(InstanceLiveness):
    """The running service: one store, one fetcher, and the current runtime."""

    runtime: Runtime

    def __init__(
        self,
        config: Config,
        *,
        dry_run: bool = False,
        clock: Callable[[], datetime] = utc_now,
        stop_requested: threading.Event | None = None,
        reload_requested: threading.Event | None = None,
        instance_name: str | None = None,
    ) -> None:
        SECRETS.update(config.secrets)
        self.dry_run = dry_run
        self.clock = clock
        self.store = Store(config.database_url)
        self.store.create_schema()
        # Several instances may share a PostgreSQL database: they share its work through
        # leases (monitor.service.cluster). On SQLite a daemon is alone.
        self.shared = self.store.shared
        self.runtime = Runtime.build(config, shared=self.shared)
        # This daemon's lease on a shared database, held from its registration (run_forever)
        # on; `run --once` holds none.
        self.lease: Lease | None = None
        # This process's name on the deliveries it sends (see monitor.store.claims). Claims left
        # by a process that is gone are void: those deliveries are pending again.
        self.claimant = new_claimant()
        if not dry_run:
            leases = self.store.instance_leases() if self.shared else None
            void = self.store.release_void_claims(
                lambda claimed_by, claimed_at: claim_is_live(
                    claimed_by, claimed_at, self.clock(), leases
                )
            )
            if void:
                logger.warning(
                    "deliver released_claims=%d note='left by a process that ended'", void
                )
        self.fetcher = Fetcher()
        # Article pages for feeds with `fulltext:`: the same fetcher (and so the same
        # per-origin limit), and each site's robots.txt kept between polls.
        self.pages = ArticlePages(self.fetcher)
        self.parser = ParsePool(parse_worker_count(config))
        # The command line may have created these before the slow imports, so a SIGTERM
        # that arrives while the daemon is starting is not lost (see signals.py).
        self.stop_requested = stop_requested or threading.Event()
        self.reload_requested = reload_requested or threading.Event()
        self.metrics = Metrics()
        self.service_manager = ServiceManager()
        # This daemon among the instances recorded in the database (run_forever only).
        self.instance = InstanceIdentity.of_this_process(instance_name)
        self._init_liveness()  # heartbeat and health (liveness.py)
        self._scheduler: Any = None  # set by run_forever
        self._polls: PollSchedule | SharedPollSchedule | None = None  # set by run_forever
        self._sender: Sender | None = None  # the daemon's, set by run_forever
        self._plan_lock = threading.Lock()  # one plan of the sender's next wake at a time
        self._next_poll_reasons = ReasonsLogged()
        self._watched_mtimes = _mtimes(config.source_files)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
        self.parser.close()
        self.fetcher.close()
        self.store.close()

    # --- one feed, one sender pass ---------------------------------------------------

    def poll(
        self,
        feed: FeedConfig,
        states: Mapping[str, FeedState] | None = None,
        *,
        unchanged_states: list[FeedStateUpdate] | None = None,
        plan_next_poll: bool = False,
        feed_states: FeedStates | None = None,
    ) -> PollResult:
        """Poll one feed and log one line about it. A bug in one feed's processing is
        logged and reported as that feed's failure; a database failure propagates.

        `states` holds every feed's stored state if the caller has read them already;
        `unchanged_states` collects the state of unchanged feeds for the caller to write
        (see refresh_feed). With `plan_next_poll` (the daemon), the result also says when
        to poll next, and the log line why that is later than the interval, when that
        reason appears or changes.

        With `feed_states` (the daemon's, in memory), the state is read from there and the
        new one recorded there: an unchanged feed's is written with the next flush."""
        runtime = self.runtime
        if feed_states is not None:
            state = feed_states.get(feed.name)
            unchanged_states = []
        else:
            state = self._state(feed.name, states)
        try:
            result = refresh_feed(
                feed,
                state=state,
                store=self.store,
                fetcher=self.fetcher,
                parser=self.parser,
                rules=runtime.rules,
                stories=runtime.stories,
                now=self.clock(),
                unchanged_states=unchanged_states,
                written_states=feed_states.written if feed_states is not None else None,
                pages=self.pages,
            )
        except StoreError:
            raise
        except Exception as error:  # one feed's bug must never stop the others
            logger.exception("poll feed=%s status=crashed", feed.name)
            result = PollResult(feed.name, ok=False, http_status=None, error=repr(error))
            crashed = True
        else:
            crashed = False
        if feed_states is not None and unchanged_states:
            feed_states.record(unchanged_states)
        reason_news = None
        if plan_next_poll:
            plan = next_poll(feed, result, random.random())
            result = replace(
                result, next_poll_seconds=plan.delay_seconds, next_poll_reason=plan.reason
            )
            reason_news = self._next_poll_reasons.news(feed.name, plan.reason)
        if not crashed:
            log_poll(result, reason_news)
        self.metrics.record_poll(
            feed.name,
            outcome="not_modified" if result.not_modified else "ok" if result.ok else "error",
            new_articles=result.new_articles,
            matches=result.matches,
            elapsed_seconds=result.elapsed_seconds,
        )
        return result

    def _state(self, name: str, states: Mapping[str, FeedState] | None) -> FeedState | None:
        return states.get(name) if states is not None else self.store.feed_state(name)

    def send_due(self, *, ignore_backoff: bool) -> DeliveryReport:
        """Release held batches whose time has come and send what is due (every pending
        delivery with ignore_backoff), each channel in a lane of its own; return once every
        outcome is written."""
        return send_due_deliveries(
            self.store,
            self._send_settings(ignore_backoff=ignore_backoff),
            now=self.clock,
            claimant=self.claimant,
            stop=self.stop_requested,
        )

    def _send_settings(self, *, ignore_backoff: bool) -> SendSettings:
        """How the current configuration sends (monitor.delivery.sender); on a shared
        database, only while this instance's lease allows (monitor.service.cluster)."""
        runtime = self.runtime
        return SendSettings(
            notifier=runtime.notifier,
            timezone=runtime.timezone,
            delivery=runtime.config.delivery,
            templates=template_chooser(runtime.config.rules, runtime.config.channels),
            ignore_backoff=ignore_backoff,
            dry_run=self.dry_run,
            may_send=self.lease.may_send if self.lease is not None else _always,
            shared=self.shared,
        )

    # --- run --once ----------------------------------------------------------------

    def run_once(self) -> CycleReport:
        """Poll every enabled feed once (ignoring schedules and backoff), and attempt every
        pending delivery once (ignoring retry backoff): those queued before the run, and
        those its polls queue, as soon as they are, while the other feeds are polled."""
        cycle_started = time.monotonic()
        feeds = [feed for feed in self.runtime.config.feeds if feed.enabled]
        workers = poll_thread_count(feeds)
        # One read of every feed's state, and one write for all the unchanged ones: a cycle
        # of 304s would otherwise be two transactions per feed.
        states = self.store.feed_states()
        unchanged: list[FeedStateUpdate] = []  # list.append is atomic across threads
        # Each channel sends in a lane of its own (monitor.delivery.sender), each delivery attempted
        # once in the run. A dry run marks nothing sent: it renders what is pending once,
        # after the polls.
        sender = None if self.dry_run else self._new_sender(once=True)
        sending = self._send_settings(ignore_backoff=True)

        def poll(feed: FeedConfig) -> PollResult:
            result = self.poll(feed, states, unchanged_states=unchanged)
            if sender is not None and result.deliveries:
                sender.wake(sending)  # sent while the other feeds are polled
            return result

        try:
            if sender is not None:
                sender.wake(sending)  # what earlier runs left pending
            try:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
                    polls = tuple(pool.map(poll, feeds))
            finally:
                self.store.update_feed_states(unchanged)
            delivery = sender.wait() if sender else self.send_due(ignore_backoff=True)
        finally:
            if sender is not None:
                sender.close()
        # Only polls a daemon scheduled need clearing: most cycles have none to clear.
        self.store.clear_next_polls(
            [
                feed.name
                for feed in feeds
                if (state := states.get(feed.name)) is not None and state.next_poll_at is not None
            ]
        )
        self.prune()
        if not self.dry_run:
            work_after_cycle(self.store, self.runtime.stories, time.monotonic() - cycle_started)
        counts = self.store.delivery_counts(self.clock())
        logger.info(
            "cycle feeds=%d failed_feeds=%d new_articles=%d matches=%d sent=%d "
            "retrying=%d failed=%d pending=%d held=%d",
            len(polls),
            sum(not poll.ok for poll in polls),
            sum(poll.new_articles for poll in polls),
            sum(poll.matches for poll in polls),
            delivery.sent,
            delivery.retrying,
            delivery.failed,
            counts["pending"],
            counts["held"],
        )
        return CycleReport(polls, delivery)

    def _new_sender(self, **options: Any) -> Sender:
        """A sender with this process's claims and clock, stopped by SIGTERM."""
        return Sender(
            self.store, claimant=self.claimant, now=self.clock, stop=self.stop_requested, **options
        )

    # --- the daemon ----------------------------------------------------------------

    def run_forever(self) -> None:
        """Run the scheduler until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self._install_signal_handlers()
        if self.stop_requested.is_set():
            logger.info("stopped before starting")
            return
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                # Polls have threads of their own (see poll_schedule.py).
                "default": {"type": "threadpool", "max_workers": 1},
                # Flushing feed states and the daily retention: slow writes, apart.
                "housekeeping": {"type": "threadpool", "max_workers": 1},
                # Waking the sender (which sends on threads of its own) never waits behind
                # slow fetches.
                "sender": {"type": "threadpool", "max_workers": 1},
                # The heartbeat must not wait behind a slow send or fetch: it measures
                # whether the scheduler and the database work, nothing else.
                "heartbeat": {"type": "threadpool", "max_workers": 1},
            },
            # The built-in misfire_grace_time of 1 s silently skips late polls.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler = scheduler
        # Recorded before the first job runs: from now on `status` and `health` see it. On
        # SQLite, refused (AlreadyRunningError) while another daemon's process runs.
        lease_seconds = self.runtime.config.cluster.lease_seconds
        if self.shared:
            self.lease = Lease(lease_seconds)
        renewal = self.lease.renewing() if self.lease is not None else 0.0
        self.store.register_instance(
            self.instance,
            self.clock(),
            lease_seconds=lease_seconds,
            exclusive=not self.shared,
        )
        if self.lease is not None:
            self.lease.renewed(renewal)
        # Each channel sends in a lane of its own: a slow one never delays another.
        sender = self._sender = self._new_sender(on_idle=self._plan_sender_wake)
        polls = self._polls = self._poll_schedule()
        polls.schedule(self.runtime.config, previous=None)
        heartbeat_seconds = heartbeat_interval_seconds(lease_seconds)
        scheduler.add_job(
            polls.flush,
            "interval",
            args=[self.store],
            seconds=FLUSH_INTERVAL_SECONDS,
            id="feed-states",
            executor="housekeeping",
        )
        scheduler.add_job(
            self._sender_job,
            "interval",
            # On a shared database, also how soon the deliveries of an instance whose lease
            # is gone are taken over.
            seconds=heartbeat_seconds if self.shared else SENDER_INTERVAL.total_seconds(),
            id="sender",
            executor="sender",
            next_run_time=self.clock(),
        )
        scheduler.add_job(
            self._watch_config_job,
            "interval",
            seconds=CONFIG_WATCH_INTERVAL_SECONDS,
            id="config-watcher",
            executor="sender",
        )
        scheduler.add_job(
            self._heartbeat_job,
            "interval",
            seconds=heartbeat_seconds,
            id="heartbeat",
            executor="heartbeat",
            next_run_time=self.clock(),
        )
        scheduler.add_job(
            self._retention_job,
            "interval",
            seconds=RETENTION_ASK_EVERY_SECONDS if self.shared else RETENTION_INTERVAL_SECONDS,
            id="retention",
            executor="housekeeping",
            next_run_time=self.clock() + timedelta(seconds=RETENTION_FIRST_DELAY_SECONDS),
        )
        schedule_checkpoints(scheduler, self.store, executor="housekeeping")
        schedule_search_index(scheduler, self.store, executor="housekeeping")
        schedule_story_grouping(
            scheduler, self.store, lambda: self.runtime.stories, executor="housekeeping"
        )
        if self.shared:
            scheduler.add_job(
                statistics_job,
                "interval",
                args=[self.store, self.instance.claim_prefix],
                seconds=STATISTICS_EVERY_SECONDS / 2,
                id="statistics",
                executor="housekeeping",
            )
        http = self._start_http()
        scheduler.start()
        polls.start()
        logger.info(
            "started feeds=%d rules=%d channels=%d dry_run=%s instance=%s",
            len(self.runtime.config.feeds),
            len(self.runtime.config.rules),
            len(self.runtime.config.channels),
            self.dry_run,
            self.instance.name,
        )
        self.service_manager.ready(f"watching {len(self.runtime.config.feeds)} feeds")
        try:
            while not self.stop_requested.wait(0.5):
                self._report_lease()
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
                if self.service_manager.watchdog_interval_seconds and self.healthy():
                    # Only real progress keeps systemd's watchdog quiet: a hung scheduler
                    # or an unreachable database gets the service restarted.
                    self.service_manager.watchdog()
        finally:
            self.service_manager.stopping()
            logger.info("stopping: waiting for running polls and sends to finish")
            scheduler.shutdown(wait=True)
            polls.shutdown()  # the polls in flight
            polls.flush(self.store)
            sender.close()  # each lane ends after the message in flight
            if http is not None:
                http.close()
            self._mark_stopped()
            logger.info("stopped")

    def prune(self) -> None:
        """Empty the bodies of articles older than `retention` (identity keys stay, so an
        old article never comes back as new) and drop finished old deliveries; forget the
        band keys of stories past their window (no article can join them any more)."""
        if self.dry_run:
            return
        stories = self.runtime.stories
        if stories is not None:
            self.store.forget_story_bands(self.clock() - timedelta(seconds=stories.window_seconds))
        retention_seconds = self.runtime.config.retention_seconds
        if not retention_seconds:
            return
        report = self.store.prune_articles(self.clock() - timedelta(seconds=retention_seconds))
        logger.info(
            "retention pruned_articles=%d removed_deliveries=%d removed_hits=%d",
            report.articles_pruned,
            report.deliveries_removed,
            report.hits_removed,
        )

    def _retention_job(self) -> None:
        try:
            if self.shared and not self.store.start_singleton_job(
                "retention", self.instance.claim_prefix, RETENTION_EVERY_SECONDS
            ):
                return  # another instance ran it within the day
            self.prune()
        except StoreError as error:
            logger.error("retention status=store_error error=%r", str(error))

    def _poll_schedule(self) -> PollSchedule | SharedPollSchedule:
        """The daemon's polls: claimed from the shared feed leases on a shared database
        (shared_schedule.py); alone on SQLite, every feed's state in memory, read once, and
        a flush of what changed every FLUSH_INTERVAL_SECONDS (feed_states.py). Either way
        polls are started by a thread of their own, not by the scheduler."""
        # New alerts go out now, not at the sender's next tick; a held one makes the sender
        # plan its release.
        on_deliveries = lambda: self._wake_sender("sender-wake", utc_now())  # noqa: E731
        if self.lease is not None:
            return SharedPollSchedule(
                self.store,
                claimant=self.instance.claim_prefix,
                lease=self.lease,
                config=lambda: self.runtime.config,
                poll=self._poll_claimed,
                clock=self.clock,
                stop=self.stop_requested,
                on_deliveries=on_deliveries,
            )
        return PollSchedule(
            FeedStates.load(self.store),
            config=lambda: self.runtime.config,
            poll=lambda feed, states: self.poll(feed, plan_next_poll=True, feed_states=states),
            clock=self.clock,
            stop=self.stop_requested,
            on_deliveries=on_deliveries,
        )

    def _poll_claimed(
        self, feed: FeedConfig, state: FeedState | None
    ) -> tuple[PollResult, FeedStateUpdate | None]:
        """Poll a feed claimed from the shared leases, with the state read at its claim;
        return the result and the new state when the poll did not write it."""
        unchanged: list[FeedStateUpdate] = []
        states = {feed.name: state} if state is not None else {}
        result = self.poll(feed, states, unchanged_states=unchanged, plan_next_poll=True)
        return result, unchanged[-1] if unchanged else None

    def _start_http(self) -> WebServer | None:
        """Serve the web view, /healthz and /metrics when `http:` is set."""
        if self.runtime.config.http is None:
            return None
        from monitor.service.web import start_web_server  # Starlette: only when served

        return start_web_server(
            lambda: self.runtime.config,
            clock=self.clock,
            health=self.health,
            metrics=self.metrics,
            before_scrape=lambda: self.metrics.set_deliveries(self.store.delivery_counts()),
        )

    def _install_signal_handlers(self) -> None:
        # Handlers only set flags; the main loop acts on them outside signal context.
        install_daemon_signals(self.stop_requested, self.reload_requested)

    def _sender_job(self) -> None:
        """Start sending what is due, each channel in its lane; never waits for a send."""
        sender = self._sender
        if self.stop_requested.is_set() or sender is None:
            return
        try:
            sender.wake(self._send_settings(ignore_backoff=False))
        except StoreError as error:
            logger.error("deliver status=store_error error=%r", str(error))
            return
        self._plan_sender_wake()

    def _plan_sender_wake(self) -> None:
        """Wake the sender when the next held batch is released or the next retry is due,
        not at its next tick. Run after each wake and after each lane's pass (which may
        have planned retries)."""
        try:
            with self._plan_lock:
                now = self.clock()
                wake_at = self.store.next_delivery_time(now)
                if wake_at is not None:
                    self._wake_sender("sender-release", wake_at + (utc_now() - now))
        except StoreError as error:
            logger.error("deliver status=store_error error=%r", str(error))

    def _wake_sender(self, job_id: str, at: datetime) -> None:
        """Run the sender once at `at` (scheduler time, UTC), besides its regular tick."""
        scheduler = self._scheduler
        if scheduler is None or self.stop_requested.is_set():
            return
        scheduler.add_job(
            self._sender_job,
            "date",
            run_date=at,
            id=job_id,
            replace_existing=True,
            executor="sender",
            # The one thread that wakes the sender runs them in turn: a wake-up planned
            # while the previous one runs must queue, not be dropped as a second instance.
            max_instances=2,
        )

    def _watch_config_job(self) -> None:
        mtimes = _mtimes(self.runtime.config.source_files)
        if mtimes != self._watched_mtimes:
            self._watched_mtimes = mtimes
            self.reload_requested.set()

    def reload(self) -> bool:
        """Load the configuration again; on any error keep the running one. Return True if
        the new configuration was applied."""
        previous = self.runtime.config
        try:
            config = load_config(previous.path)
            # Before the runtime is built: building it checks the channel URLs again.
            SECRETS.update(previous.secrets | config.secrets)
            runtime = Runtime.build(config, shared=self.shared)
        except ConfigError as error:
            for problem in error.problems:
                logger.error("reload status=rejected problem=%r", str(problem))
            logger.error("reload status=rejected keeping=previous configuration")
            return False
        except (ValueError, OSError) as error:
            logger.error("reload status=rejected error=%r", str(error))
            return False
        if config.database_url != previous.database_url:
            logger.warning("reload database_changed=true note='restart to use the new database'")
        if config.http != previous.http:
            logger.warning("reload http_changed=true note='restart to serve the new http settings'")
        self.runtime = runtime
        parse_workers = parse_worker_count(config)
        if parse_workers != self.parser.workers:
            previous_parser, self.parser = self.parser, ParsePool(parse_workers)
            previous_parser.close()  # a parse in flight finishes in its poll's own thread
        self._watched_mtimes = _mtimes(config.source_files)
        if self._polls is not None:
            self._polls.schedule(config, previous)
        logger.info(
            "reload status=applied feeds=%d rules=%d channels=%d",
            len(config.feeds),
            len(config.rules),
            len(config.channels),
        )
        return True


def _always() -> bool:
    return True


def parse_worker_count(config: Config) -> int:
    """How many parser processes a configuration is worth (see PARSE_WORKERS_MIN_FEEDS)."""
    enabled = sum(feed.enabled for feed in config.feeds)
    return default_worker_count() if enabled >= PARSE_WORKERS_MIN_FEEDS else 0


def _mtimes(paths: tuple[Path, ...]) -> tuple[float | None, ...]:
    def mtime(path: Path) -> float | None:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    return tuple(mtime(path) for path in paths)
