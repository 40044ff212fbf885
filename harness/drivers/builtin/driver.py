"""The builtin driver: asyncio (uvloop when installed) + aiohttp, one coroutine per request.

aiohttp measured ~10× faster than httpx as a load generator here. Closed-loop points keep
`concurrency` requests in flight; open-loop points send on the precomputed schedule whether or
not earlier requests finished, so latency is measured from `scheduled_at`.

Connections are capped at `job.client.connections` (0 = sized to the load: the concurrency, or the
schedule's length up to 1024). A request stamps `sent_at` once it holds a connection slot, so a
cap that binds shows as dispatch lag (sent − scheduled), never as hidden service time.
A request the server never received on a stale kept-alive connection is sent once more on a
fresh one and counted once (`resend`).
With `job.client.processes` > 1 the load is split over that many driver processes (see `shares`).

A closed loop's stream k sends its first request at `closed_starts(point)[k]` (the point's
ramp-up), not all at once. Each process records its own event-loop lag (`loop_lag`) into
`progress.loop_lag`, and the driver's CPU capacity is one core per process (an asyncio loop runs
on one thread), so the point can be flagged `driver_bound` in closed loop too.

When the target dies (`harness.drivers.backoff`): a closed-loop user whose request failed at
once waits an exponential back-off before its next one, an `ErrorStreak` of dead-server failures
sets `progress.abort`, and once `progress.abort` is set (by it or by the point's liveness watch)
no request is sent any more and those still in flight after `ABORT_GRACE_S` are cancelled:
the point ends within about a second of the verdict.

With `job.client.retry_refused` = N, a request refused with a 503 is sent again up to N times
after a jittered exponential back-off (`retry_delay`), keeping its `scheduled_at`: the user's
latency from scheduled includes every wait. Each attempt is a sample (the server saw each one); a
retried one carries `extra.attempt` (2, 3, ...; `Sample.attempt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from harness.arrivals import Arrival
from harness.drivers.backoff import Backoff, ErrorStreak, retry_delay
from harness.drivers.builtin.loop_lag import LoopLag
from harness.drivers.builtin.resend import Connections
from harness.drivers.builtin.shares import Share, run_shares
from harness.drivers.builtin.streaming import client_timeout, fetch
from harness.drivers.builtin.turns import take_turn, think
from harness.drivers.job import (
    MAX_AUTO_CONNECTIONS,
    DriverInterrupted,
    LoadJob,
    Progress,
    closed_starts,
)
from harness.samples import Sample
from harness.workload.prompts import RequestSpec
from harness.workload.request_pool import RequestPool
from harness.workload.sessions import Conversation, Reply

ABORT_POLL_S = 0.05
ABORT_GRACE_S = 1.0


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def connection_limit(job: LoadJob, share: Share, arrivals: list[Arrival] | None) -> int:
    """This process's connection cap: its share of `job.client.connections`, or sized to its
    load."""
    if job.client.connections:
        return max(1, share.part(job.client.connections))
    if arrivals is None:
        return max(1, share.part(job.point.concurrency or 1))
    return max(1, min(len(arrivals), MAX_AUTO_CONNECTIONS))


class BuiltinDriver:
    name = "builtin"

    def run(self, job: LoadJob, progress: Progress) -> list[Sample]:
        RequestPool(job, job.arrivals())  # build the prompts before the clock runs
        start = max(job.point_start, job.clock.now())
        job = replace(job, point_start=start)
        progress.started_at = start
        processes = job.client.processes
        progress.cpu_capacity_pct = 100.0 * processes
        if job.point.kind == "closed":
            progress.stats["ramp_up_s"] = job.point.ramp_up_s
        if processes > 1:
            return run_shares(job, progress, processes, self.run_share)
        return self.run_share(job, Share(0, 1), progress)

    def run_share(self, job: LoadJob, share: Share, progress: Progress) -> list[Sample]:
        """Drive this process's share of the point; `DriverInterrupted` keeps what it has."""
        samples: list[Sample] = []
        try:
            run_loop(self._run(job, share, progress, samples))
        except KeyboardInterrupt:
            raise DriverInterrupted(samples) from None
        return samples

    async def _run(self, job: LoadJob, share: Share, progress: Progress,
                   samples: list[Sample]) -> None:
        arrivals = job.arrivals()  # with min_requests, the schedule already meets it
        pool = RequestPool(job, arrivals)  # built before the first request is due
        limit = connection_limit(job, share, arrivals)
        slots = asyncio.Semaphore(limit)
        headers = {"Authorization": f"Bearer {job.api_key}"} if job.api_key else {}
        async with LoopLag(job.clock, progress.loop_lag), Connections(
                limit, client_timeout(job), headers) as conns:
            session, fresh = conns.pooled, conns.fresh

            streak = ErrorStreak()

            def record(sample: Sample) -> None:
                samples.append(sample)
                reason = streak.observe(sample)
                if reason is not None:
                    progress.fail(reason, job.clock.now())

            async def attempt(index: int, scheduled_at: float, number: int = 1) -> Sample:
                async with slots:
                    sent_at = job.clock.now()
                    sample = await fetch(session, job, pool.spec(index), scheduled_at, sent_at,
                                         progress, self.name, pool.body(index), index,
                                         fresh=fresh)
                if number > 1:
                    sample = replace(sample, extra=replace(sample.extra, attempt=number))
                record(sample)
                return sample

            async def one(index: int, scheduled_at: float) -> Sample:
                sample = await attempt(index, scheduled_at)
                rng = random.Random(f"{job.seed}-{index}")  # the jitter, reproducible
                for k in range(job.client.retry_refused):
                    if sample.status != "refused" or progress.abort is not None:
                        break
                    await asyncio.sleep(retry_delay(k, job.client.retry_base_s, rng))
                    sample = await attempt(index, scheduled_at, k + 2)
                return sample

            async def turn(index: int, scheduled_at: float, conv: Conversation,
                           stream: int) -> Sample:
                async def send(spec: RequestSpec, body: bytes, reply: Reply) -> Sample:
                    async with slots:
                        return await fetch(session, job, spec, scheduled_at, job.clock.now(),
                                           progress, self.name, body, index, reply, fresh)

                sample = await take_turn(conv, stream, pool.spec(index), job, send)
                record(sample)
                await think(job)
                return sample

            await until_aborted(self._load(job, share, arrivals, one, turn, progress), progress)

    def _load(self, job: LoadJob, share: Share, arrivals: list[Arrival] | None, one: Any,
              turn: Any, progress: Progress) -> Coroutine[Any, Any, None]:
        """The loop that drives the point: users holding sessions, a closed loop or arrivals."""
        if job.workload.turns > 1:
            return self._closed(job, share, turn, progress, sessions=True)
        if arrivals is None:
            return self._closed(job, share, one, progress)
        return self._open(job, share, arrivals, one, progress)

    async def _closed(self, job: LoadJob, share: Share, one: Any, progress: Progress,
                      sessions: bool = False) -> None:
        """`share.part(concurrency)` loops, each sending its next request when the last ends;
        stream k (k = share.index, share.index + share.count, ...) starts at its ramp offset.
        With `sessions`, each loop is a user holding conversations (`one` is a turn)."""
        assert job.point.concurrency is not None
        indices = share.indices()
        cap = job.point.max_requests
        starts = closed_starts(job.point)[share.index::share.count]
        measured, wanted = [0], share.part(job.point.min_requests)  # sent after warm-up

        async def worker(offset_s: float, stream: int) -> None:
            delay = job.point_start + offset_s - job.clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            backoff = Backoff()
            conv = Conversation(job.workload.turns, job.prompts.context) if sessions else None
            for index in indices:
                now = job.clock.now()
                if (job.load_over(now, measured[0], wanted) or (cap and index >= cap)
                        or progress.abort is not None or progress.ended(now)):
                    return
                measured[0] += now >= job.warmup_end
                sample = await (one(index, now, conv, stream) if sessions else one(index, now))
                wait_s = backoff.after(sample)
                if wait_s > 0:
                    await asyncio.sleep(wait_s)

        await asyncio.gather(*(worker(offset, share.index + k * share.count)
                               for k, offset in enumerate(starts)))

    async def _open(self, job: LoadJob, share: Share, arrivals: list[Arrival],
                    one: Any, progress: Progress) -> None:
        """Start every arrival of this share at its due time, whatever is still in flight."""
        tasks: list[asyncio.Task[Sample]] = []
        for index in range(share.index, len(arrivals), share.count):
            due = job.point_start + arrivals[index].offset_s
            delay = due - job.clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if progress.abort is not None or progress.ended(job.clock.now()):
                break
            tasks.append(asyncio.create_task(one(index, due)))
        await asyncio.gather(*tasks)


async def until_aborted(main: Coroutine[Any, Any, None], progress: Progress,
                        poll_s: float = ABORT_POLL_S, grace_s: float = ABORT_GRACE_S) -> None:
    """Run `main` to its end; once `progress.abort` is set, give the requests in flight
    `grace_s` to end on their own (a dead process resets them at once: they are recorded),
    then cancel them (a dead engine may never answer)."""
    task = asyncio.ensure_future(main)
    while not task.done():
        await asyncio.wait({task}, timeout=poll_s)
        if progress.abort is not None and not task.done():
            await asyncio.wait({task}, timeout=grace_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
    task.result()
