"""Leader election's pure core: observe, decide, released, check_timings; and one real-server round."""

from __future__ import annotations

import asyncio

import pytest

from sliceplane.api.meta import parse_time, rfc3339_micro
from sliceplane.controllers.leaderelection import (
    LeaderElector,
    LeaseRecord,
    Observation,
    check_timings,
    decide,
    is_expired,
    observe,
    released,
)

T0 = 1_700_000_000.0
ME = "cm-a"
OTHER = "cm-b"


def rec(holder: str, duration: int = 15, transitions: int = 0, renew: float = T0, acquire: float = T0) -> LeaseRecord:
    return LeaseRecord(holder, duration, rfc3339_micro(acquire), rfc3339_micro(renew), transitions)


# (current record, observation, now) -> (action, holder written, transitions written, acquireTime written)
DECIDE_CASES = [
    ("no-lease-creates", None, None, T0, "create", ME, 0, T0),
    ("own-lease-renews-keeping-acquire-time", rec(ME, transitions=3), Observation(rec(ME, transitions=3), T0),
     T0 + 2, "update", ME, 3, T0),
    ("held-by-other-fresh-waits", rec(OTHER), Observation(rec(OTHER), T0), T0 + 14.9, "wait", None, None, None),
    ("held-by-other-never-observed-waits", rec(OTHER), None, T0 + 100, "wait", None, None, None),
    ("held-by-other-expired-takes-over", rec(OTHER, transitions=1), Observation(rec(OTHER, transitions=1), T0),
     T0 + 15, "update", ME, 2, T0 + 15),
    ("expiry-uses-the-records-duration", rec(OTHER, duration=5), Observation(rec(OTHER, duration=5), T0),
     T0 + 5, "update", ME, 1, T0 + 5),
    ("released-lease-acquired-at-once-as-a-transition", rec("", duration=1, transitions=4),
     Observation(rec("", duration=1, transitions=4), T0), T0 + 0.1, "update", ME, 5, T0 + 0.1),
]


@pytest.mark.parametrize(
    ("current", "observation", "now", "action", "holder", "transitions", "acquire"),
    [c[1:] for c in DECIDE_CASES], ids=[c[0] for c in DECIDE_CASES],
)
def test_decide(current: LeaseRecord | None, observation: Observation | None, now: float, action: str,
                holder: str | None, transitions: int | None, acquire: float | None) -> None:
    d = decide(current, observation, ME, 15, now)
    assert d.action == action
    if action == "wait":
        assert d.record is None
        return
    assert d.record is not None
    assert d.record.holder_identity == holder
    assert d.record.lease_transitions == transitions
    assert d.record.lease_duration_seconds == 15
    assert parse_time(d.record.acquire_time) == pytest.approx(acquire, abs=1e-5)
    assert parse_time(d.record.renew_time) == pytest.approx(now, abs=1e-5)


OBSERVE_CASES = [
    ("first-look-starts-clock", None, rec(OTHER), T0 + 3, T0 + 3),
    ("unchanged-record-keeps-clock", Observation(rec(OTHER), T0), rec(OTHER), T0 + 9, T0),
    ("renewed-record-restarts-clock", Observation(rec(OTHER), T0), rec(OTHER, renew=T0 + 2), T0 + 9, T0 + 9),
    ("new-holder-restarts-clock", Observation(rec(OTHER), T0), rec("cm-c", transitions=1), T0 + 9, T0 + 9),
]


@pytest.mark.parametrize(("previous", "record", "now", "observed_at"), [c[1:] for c in OBSERVE_CASES],
                         ids=[c[0] for c in OBSERVE_CASES])
def test_observe(previous: Observation | None, record: LeaseRecord, now: float, observed_at: float) -> None:
    obs = observe(previous, record, now)
    assert obs.record == record
    assert obs.observed_at == observed_at


EXPIRED_CASES = [
    ("just-before", T0 + 14.999, False),
    ("exactly-at-duration", T0 + 15, True),
    ("long-after", T0 + 60, True),
]


@pytest.mark.parametrize(("now", "expired"), [c[1:] for c in EXPIRED_CASES], ids=[c[0] for c in EXPIRED_CASES])
def test_is_expired(now: float, expired: bool) -> None:
    assert is_expired(Observation(rec(OTHER), T0), now) is expired


def test_released_clears_holder_and_keeps_transitions() -> None:
    r = released(rec(ME, transitions=2), T0 + 7)
    assert (r.holder_identity, r.lease_duration_seconds, r.lease_transitions) == ("", 1, 2)
    assert parse_time(r.renew_time) == pytest.approx(T0 + 7, abs=1e-5)


def test_lease_record_round_trips_through_spec() -> None:
    r = rec(ME, transitions=5)
    assert LeaseRecord.from_lease({"spec": r.to_spec()}) == r
    assert LeaseRecord.from_lease(None) is None
    assert LeaseRecord.from_lease({"spec": {}}) == LeaseRecord()


TIMING_CASES = [
    ("kube-defaults", (15, 10, 2), None),
    ("duration-not-above-deadline", (10, 10, 2), "lease duration must be greater than the renew deadline"),
    ("deadline-not-above-jittered-retry", (15, 2.4, 2), "renew deadline must be greater than retry period * 1.2"),
    ("short-test-settings", (3, 2, 0.5), None),
]


@pytest.mark.parametrize(("timings", "message"), [c[1:] for c in TIMING_CASES], ids=[c[0] for c in TIMING_CASES])
def test_check_timings(timings: tuple[float, float, float], message: str | None) -> None:
    assert check_timings(*timings) == message


async def test_two_electors_on_a_real_server_one_leads_then_the_other_after_release() -> None:
    """Two candidates against the real API server (memory store): one leads; cancelling it hands over."""
    from sliceplane.api.registry import LEASES
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.client.rest import RESTClient

    server = APIServer(ServerConfig(port=0, store_url="memory://"))
    await server.start()
    try:
        async with RESTClient(server.url) as client:
            leading: list[str] = []

            def leader(name: str):  # type: ignore[no-untyped-def]
                async def lead() -> None:
                    leading.append(name)
                    await asyncio.Event().wait()
                return lead

            a = LeaderElector(client, "test-lock", "kube-system", "a", 3, 2, 0.2)
            b = LeaderElector(client, "test-lock", "kube-system", "b", 3, 2, 0.2)
            ta = asyncio.create_task(a.run(leader("a")))
            for _ in range(100):
                if leading:
                    break
                await asyncio.sleep(0.05)
            tb = asyncio.create_task(b.run(leader("b")))
            await asyncio.sleep(0.6)
            assert leading == ["a"]
            lease = await client.get(LEASES, "test-lock", "kube-system")
            assert lease["spec"]["holderIdentity"] == "a"
            assert lease["spec"]["leaseTransitions"] == 0
            ta.cancel()
            await asyncio.gather(ta, return_exceptions=True)
            for _ in range(100):
                if len(leading) == 2:
                    break
                await asyncio.sleep(0.05)
            assert leading == ["a", "b"]
            lease = await client.get(LEASES, "test-lock", "kube-system")
            assert lease["spec"]["holderIdentity"] == "b"
            assert lease["spec"]["leaseDurationSeconds"] == 3
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
    finally:
        await server.stop()


async def test_leader_on_a_busy_loop_keeps_its_lease_and_releases_it_when_cancelled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Renewals run in their own thread: a lead() that blocks its loop past the renew deadline keeps the lease."""
    import socket
    import subprocess
    import sys
    import time

    from sliceplane.api.registry import LEASES
    from sliceplane.client.rest import RESTClient
    from sliceplane.controllers.leaderelection import run_elected_in_thread

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "apiserver.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "sliceplane", "apiserver", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with RESTClient(url) as client:
            for _ in range(200):
                if b"ready" in (tmp_path / "apiserver.log").read_bytes():
                    break
                await asyncio.sleep(0.05)
            busy_over = asyncio.Event()

            async def lead() -> None:
                time.sleep(3.0)  # CPU-bound work holding this loop longer than the renew deadline (2 s)
                busy_over.set()
                await asyncio.Event().wait()

            task = asyncio.create_task(run_elected_in_thread(
                lambda: LeaderElector(RESTClient(url), "busy", "kube-system", "a", 3, 2, 0.5), lead))
            await asyncio.wait_for(busy_over.wait(), 30)
            await asyncio.sleep(0.2)
            assert not task.done()
            spec = (await client.get(LEASES, "busy", "kube-system"))["spec"]
            assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("a", 0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            spec = (await client.get(LEASES, "busy", "kube-system"))["spec"]
            assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("", 1)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def test_leader_that_sees_another_holder_stops_leading() -> None:
    """Someone else's name in the Lease (a split brain healed) ends leadership at the next renewal."""
    from sliceplane.api.registry import LEASES
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.client.rest import RESTClient
    from sliceplane.controllers.leaderelection import LeadershipLost

    server = APIServer(ServerConfig(port=0, store_url="memory://"))
    await server.start()
    try:
        async with RESTClient(server.url) as client:
            leading = asyncio.Event()

            async def lead() -> None:
                leading.set()
                await asyncio.Event().wait()

            elector = LeaderElector(client, "lock", "kube-system", "a", 30, 20, 0.2)
            task = asyncio.create_task(elector.run(lead))
            await asyncio.wait_for(leading.wait(), 10)
            lease = await client.get(LEASES, "lock", "kube-system")
            lease["spec"]["holderIdentity"] = "intruder"
            await client.update(LEASES, lease)
            with pytest.raises(LeadershipLost):
                await asyncio.wait_for(task, 10)
            assert elector.is_leader is False
            assert elector.leader_identity == "intruder"
    finally:
        await server.stop()
