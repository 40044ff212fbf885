"""The builtin driver's side of multi-turn sessions (`harness.workload.sessions`): one turn of a
user.

`take_turn` fits the pool's next message into the user's conversation (starting a new one when
it must), sends the conversation so far with it, records the answer, and tags the sample with
`extra.session` (user stream and conversation number, e.g. "3-0") and `extra.turn`
(0 = the first). `think` is the user's pause after an answer, cut at the load's end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

from harness.drivers.job import LoadJob
from harness.samples import Sample
from harness.workload.prompts import RequestSpec
from harness.workload.sessions import Conversation, Reply

Send = Callable[[RequestSpec, bytes, Reply], Awaitable[Sample]]


async def take_turn(conv: Conversation, stream: int, spec: RequestSpec, job: LoadJob,
                    send: Send) -> Sample:
    """Send `spec`'s message as the next turn of `conv` (user `stream`) and record it."""
    if not conv.takes(spec):
        conv.next_session()
    turn, session = conv.turn, conv.session
    body = json.dumps(conv.body(spec, job.workload, job.model_name)).encode()
    reply = Reply()
    sample = await send(replace(spec, prompt_tokens=conv.sent_tokens(spec)), body, reply)
    if sample.ok:
        conv.record(spec, reply)
    else:
        conv.next_session()
    return replace(sample, extra=replace(sample.extra, session=f"{stream}-{session}",
                                         turn=turn))


async def think(job: LoadJob) -> None:
    """The user's think time after an answer (`workload.think_time_s`), never past the load."""
    pause = min(job.workload.think_time_s, job.hard_end - job.clock.now())
    if pause > 0:
        await asyncio.sleep(pause)
