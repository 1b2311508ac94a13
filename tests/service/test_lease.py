"""This instance's own view of its lease (monitor.service.cluster), on a clock of our own."""

from __future__ import annotations

from monitor.service.cluster import Lease, send_timeout_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_counts_from_when_its_renewal_was_sent_and_stops_sends_at_the_margin() -> None:
    clock = Clock()
    lease = Lease(60, monotonic=clock)
    assert not lease.held() and not lease.may_send()  # never renewed

    sent_at = lease.renewing()
    clock.now += 5  # the database took 5 s to answer
    lease.renewed(sent_at)
    assert lease.remaining_seconds() == 55  # from when it was sent, not answered
    clock.now += 24
    assert lease.may_send()  # 31 s left: more than the margin (30 s)
    clock.now += 2
    assert lease.held() and not lease.may_send()  # 29 s left: no new send
    clock.now += 29
    assert not lease.held()

    late = Lease(60, monotonic=clock)
    late.renewed(clock.now)
    late.renewed(clock.now - 30)  # an older renewal answered late never shortens it
    assert late.remaining_seconds() == 60


def test_a_send_is_bounded_by_the_margin_on_a_shared_database() -> None:
    assert send_timeout_seconds(None) == 60  # alone on SQLite
    assert send_timeout_seconds(60) == 30
    assert send_timeout_seconds(600) == 60
