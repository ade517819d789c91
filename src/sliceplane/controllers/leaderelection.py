"""Leader election over a `coordination.k8s.io/v1` Lease, the way Kubernetes' controllers elect one.

Candidates race to write their identity into one Lease with compare-and-swap (the update carries
the resourceVersion they read). The holder renews `renewTime` every `retry_period`; if it cannot
renew for `renew_deadline` it gives up leadership. A standby takes the lease once it has seen the
same lease record unchanged for `leaseDurationSeconds` of its *own* clock: expiry is judged from
when a candidate last saw the record change, not from the holder's timestamps, so clock skew
between machines does not matter.

Pure core: `observe` and `decide` (values in, values out, time as an argument).
Shell: `LeaderElector`, which talks to the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sliceplane.api.errors import StatusError
from sliceplane.api.meta import rfc3339_micro
from sliceplane.api.registry import LEASES

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# How much later than `retry_period` a retry may fire (client-go's jitter factor).
JITTER_FACTOR = 1.2


# --- pure core -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    """The part of a Lease's spec that leader election reads and writes."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    lease_transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Obj | None) -> LeaseRecord | None:
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime") or "",
            renew_time=spec.get("renewTime") or "",
            lease_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> Obj:
        spec: Obj = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.lease_transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


@dataclass(frozen=True)
class Observation:
    """The last lease record a candidate saw, and when (on its own clock) it saw it change."""

    record: LeaseRecord
    observed_at: float


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """Restart the expiry clock only when the record changed since the last look."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


Action = Literal["create", "update", "wait"]


@dataclass(frozen=True)
class Decision:
    """What a candidate should do: create the Lease, update it (acquire or renew), or wait."""

    action: Action
    record: LeaseRecord | None = None  # the record to write, for create and update
    reason: str = ""


def is_expired(observation: Observation, now: float) -> bool:
    """The holder has not changed the record for its whole lease duration (by our clock)."""
    return observation.observed_at + observation.record.lease_duration_seconds <= now


def decide(
    current: LeaseRecord | None,
    observation: Observation | None,
    identity: str,
    lease_duration: int,
    now: float,
) -> Decision:
    """Acquire, renew, or wait, given the Lease as read (None: it does not exist) and our observation of it."""
    stamp = rfc3339_micro(now)
    if current is None:
        return Decision(
            "create",
            LeaseRecord(identity, lease_duration, stamp, stamp, 0),
            "no lease yet",
        )
    if current.holder_identity == identity:
        return Decision(
            "update",
            LeaseRecord(
                identity, lease_duration, current.acquire_time or stamp, stamp, current.lease_transitions
            ),
            "renew",
        )
    if current.holder_identity and (observation is None or not is_expired(observation, now)):
        return Decision("wait", None, f"held by {current.holder_identity}")
    # Free (released) or expired: take it over; every change of holder counts as a transition.
    transitions = current.lease_transitions + 1
    return Decision(
        "update",
        LeaseRecord(identity, lease_duration, stamp, stamp, transitions),
        "expired" if current.holder_identity else "released",
    )


def released(record: LeaseRecord, now: float) -> LeaseRecord:
    """The record a leader writes when it steps down cleanly, so a standby need not wait out the lease."""
    return LeaseRecord("", 1, record.acquire_time, rfc3339_micro(now), record.lease_transitions)


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> str | None:
    """The constraints client-go enforces between the three durations; an error message, or None."""
    if lease_duration <= renew_deadline:
        return "lease duration must be greater than the renew deadline"
    if renew_deadline <= JITTER_FACTOR * retry_period:
        return f"renew deadline must be greater than retry period * {JITTER_FACTOR}"
    if lease_duration < 1 or renew_deadline <= 0 or retry_period <= 0:
        return "lease duration must be at least 1s, renew deadline and retry period must be positive"
    return None


def default_identity() -> str:
    """hostname_uuid, unique per process, as kube-controller-manager forms it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


# --- imperative shell ------------------------------------------------------------------------------


class LeadershipLost(Exception):
    """This process held the lease and could not renew it within the renew deadline."""


class LeaderElector:
    """Campaigns for one Lease and runs `lead` only while holding it."""

    def __init__(
        self,
        client: Any,
        lease_name: str,
        namespace: str,
        identity: str,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
        *,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        problem = check_timings(lease_duration, renew_deadline, retry_period)
        if problem:
            raise ValueError(problem)
        self.client = client
        self.lease_name = lease_name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self._observation: Observation | None = None
        self._lease: Obj | None = None
        self.is_leader = False
        self.leader_identity = ""

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Wait to acquire, then run `lead()` while renewing; raise LeadershipLost if renewal fails.

        Returns normally only if `lead()` returns. Cancelling `run` releases the lease (if
        `release_on_cancel`) so that a standby takes over at once.
        """
        await self._acquire()
        leading = asyncio.create_task(lead(), name="leader")
        lost = asyncio.create_task(self._renew_until_lost(), name="lease-renewal")
        try:
            done, _ = await asyncio.wait([leading, lost], return_when=asyncio.FIRST_COMPLETED)
            if leading in done:
                leading.result()
                return
            self.is_leader = False
            log.error("leaderelection lost: could not renew lease %s/%s", self.namespace, self.lease_name)
            raise LeadershipLost(f"lost lease {self.namespace}/{self.lease_name}")
        except asyncio.CancelledError:
            # Stop leading before letting go, so two leaders never act at once.
            for task in (lost, leading):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.release_on_cancel and self.is_leader:
                await self._release()
            raise
        finally:
            for task in (lost, leading):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    def _jittered(self) -> float:
        return self.retry_period * (1 + random.random() * (JITTER_FACTOR - 1))

    async def _acquire(self) -> None:
        log.info("attempting to acquire leader lease %s/%s", self.namespace, self.lease_name)
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self._jittered())
        log.info("successfully acquired lease %s/%s as %s", self.namespace, self.lease_name, self.identity)

    async def _renew_until_lost(self) -> None:
        last_renew = self.clock()
        while True:
            await asyncio.sleep(self.retry_period)
            remaining = self.renew_deadline - (self.clock() - last_renew)
            if remaining <= 0:
                return
            try:
                ok = await asyncio.wait_for(self._try_acquire_or_renew(), remaining)
            except TimeoutError:
                ok = False
            if ok:
                last_renew = self.clock()
            elif self.leader_identity not in ("", self.identity):
                return  # another candidate holds it now: stop at once rather than at the deadline
            elif self.clock() - last_renew >= self.renew_deadline:
                return

    async def _try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, decide, write. True when we hold the lease afterwards."""
        now = self.clock()
        try:
            lease: Obj | None = await self.client.get(LEASES, self.lease_name, self.namespace)
        except StatusError as e:
            if e.code != 404:
                log.warning("error retrieving lease %s/%s: %s", self.namespace, self.lease_name, e)
                return False
            lease = None
        except (ConnectionError, TimeoutError) as e:
            log.warning("error retrieving lease %s/%s: %s", self.namespace, self.lease_name, e)
            return False
        current = LeaseRecord.from_lease(lease)
        if current is not None:
            self._observation = observe(self._observation, current, now)
            self.leader_identity = current.holder_identity
        decision = decide(current, self._observation, self.identity, int(self.lease_duration), now)
        if decision.action == "wait":
            self.is_leader = False
            return False
        assert decision.record is not None
        try:
            if decision.action == "create":
                body: Obj = {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.lease_name, "namespace": self.namespace},
                    "spec": decision.record.to_spec(),
                }
                written = await self.client.create(LEASES, body, self.namespace)
            else:
                assert lease is not None
                body = {**lease, "spec": {**(lease.get("spec") or {}), **decision.record.to_spec()}}
                written = await self.client.update(LEASES, body)
        except StatusError as e:
            # 409: someone else wrote first (or the Lease appeared); re-read next round.
            log.info("lease %s/%s %s failed: %s", self.namespace, self.lease_name, decision.action, e)
            self.is_leader = False
            return False
        except (ConnectionError, TimeoutError) as e:
            log.warning("lease %s/%s %s failed: %s", self.namespace, self.lease_name, decision.action, e)
            return False
        self._lease = written
        record = LeaseRecord.from_lease(written)
        assert record is not None
        self._observation = Observation(record, now)
        self.leader_identity = self.identity
        if not self.is_leader and decision.reason != "renew":
            log.info("new leader %s (%s)", self.identity, decision.reason)
        self.is_leader = True
        return True

    async def _release(self) -> None:
        lease = self._lease
        if lease is None:
            return
        record = LeaseRecord.from_lease(lease)
        assert record is not None
        body = {**lease, "spec": {**(lease.get("spec") or {}), **released(record, self.clock()).to_spec()}}
        try:
            await asyncio.wait_for(self.client.update(LEASES, body), self.retry_period)
            log.info("released lease %s/%s", self.namespace, self.lease_name)
        except (StatusError, ConnectionError, TimeoutError) as e:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.lease_name, e)
        self.is_leader = False


async def run_elected_in_thread(
    new_elector: Callable[[], LeaderElector],
    lead: Callable[[], Awaitable[None]],
) -> None:
    """Campaign and renew on an event loop of their own, in a thread; run `lead()` on this loop while leading.

    Controllers share their loop with long CPU-bound stretches (relists, reconciling hundreds of
    pods). Renewals on that same loop would be starved and the lease lost on a busy machine; in a
    thread they get the interpreter every switch interval whatever the controllers do.
    `new_elector` is called in the thread, so its client's connections belong to that loop.
    Raises LeadershipLost when the lease is lost; on cancellation stops `lead()`, then releases.
    """
    import threading

    main_loop = asyncio.get_running_loop()
    started = asyncio.Event()
    outcome: asyncio.Future[None] = main_loop.create_future()
    thread_state: dict[str, Any] = {}
    release = threading.Event()

    def settle(exc: BaseException | None) -> None:
        if not outcome.done():
            if exc is None:
                outcome.set_result(None)
            else:
                outcome.set_exception(exc)

    async def campaign() -> None:
        elector = new_elector()
        thread_state["loop"] = asyncio.get_running_loop()

        async def hold() -> None:
            main_loop.call_soon_threadsafe(started.set)
            await asyncio.Event().wait()

        try:
            await elector.run(hold)
        finally:
            close = getattr(elector.client, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    def thread_main() -> None:
        try:
            asyncio.run(_cancellable(campaign(), thread_state, release))
            exc: BaseException | None = None
        except BaseException as e:  # handed over to the main loop
            exc = e
        with contextlib.suppress(RuntimeError):  # the main loop may be gone already
            main_loop.call_soon_threadsafe(settle, None if isinstance(exc, asyncio.CancelledError) else exc)

    thread = threading.Thread(target=thread_main, name="leader-election", daemon=True)
    thread.start()
    leading: asyncio.Task[None] | None = None
    try:
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait([waiter, outcome], return_when=asyncio.FIRST_COMPLETED)
        if outcome in done:
            waiter.cancel()
            outcome.result()
            return
        leading = asyncio.create_task(lead(), name="leader")
        await asyncio.wait([leading, outcome], return_when=asyncio.FIRST_COMPLETED)
        if outcome.done():
            outcome.result()  # LeadershipLost
            return
        leading.result()
    finally:
        if leading is not None and not leading.done():
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await leading
        # Controllers are stopped: now let the thread release the lease and finish.
        release.set()
        loop = thread_state.get("loop")
        task = thread_state.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        await asyncio.to_thread(thread.join, 10)


async def _cancellable(coro: Awaitable[None], state: dict[str, Any], release: Any) -> None:
    """Run `coro` as a task whose handle the main thread can cancel."""
    task = asyncio.ensure_future(coro)
    state["task"] = task
    if release.is_set():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
