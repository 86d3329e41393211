"""The Ray pool actor's source cache, on the plain class (Ray is not needed to call it).

Ray starts an async actor's calls in no fixed order: the chunk that carries a
grader's source can start after a later chunk that names only its digest. The
digest-only chunk waits for the source instead of bouncing back to the driver
(which would send the source a second time).
"""

from __future__ import annotations

import asyncio
import hashlib

from rftgrade._executors import PythonCalls, PythonProgram
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._ray_actor import PoolActor

SOURCE = "def grade(sample, item):\n    return int(sample['output_text']) / 1000\n"
PROGRAM = PythonProgram(source=SOURCE, digest=hashlib.sha256(SOURCE.encode()).hexdigest(), name="score")


def calls(*values: int) -> PythonCalls:
    return PythonCalls([{"output_text": str(v)} for v in values], [{} for _ in values])


async def test_a_chunk_that_starts_before_its_source_waits_for_it() -> None:
    actor = PoolActor("process", 1, Limits(timeout=10.0), None, 1000)
    try:
        digest_only = asyncio.ensure_future(actor.grade(PROGRAM.digest, None, calls(2, 3), 10.0))
        await asyncio.sleep(0.2)  # it is waiting: the source has not come
        assert not digest_only.done()
        first = await actor.grade(PROGRAM.digest, PROGRAM, calls(1), 10.0)
        second = await digest_only
    finally:
        await actor.close()
    assert first is not None and [o.reward for o in first] == [0.001]
    assert second is not None and [o.reward for o in second] == [0.002, 0.003]
    assert actor.sources_received == 1


async def test_a_source_never_sent_is_asked_for_again() -> None:
    actor = PoolActor("process", 1, Limits(timeout=10.0), None, 1000)
    actor.SOURCE_WAIT = 0.2
    try:
        assert await actor.grade(PROGRAM.digest, None, calls(1), 10.0) is None
    finally:
        await actor.close()
    assert actor.sources_received == 0
