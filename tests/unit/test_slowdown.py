"""The injected regression (`targets.model.slowdown`): after each piece of model work the thread
waits (factor − 1) times as long as it took; the factor comes from the environment and a bad one
is refused in one line. Time is a fake clock: the waits are what is checked, not how long
anything took."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from targets.model import slowdown
from targets.model.load import load_engine
from targets.model.slowdown import ENV, injected, slowed_call, slowed_tokens


class FakeClock:
    """perf_counter and sleep on a clock that moves only when told: token i "takes"
    `steps[i]` seconds of model work; the waits are recorded and move the clock too."""

    def __init__(self, steps: list[float]) -> None:
        self.now, self.steps = 0.0, steps
        self.waits: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 9))
        self.now += seconds

    def produce(self, i: int) -> int:
        self.now += self.steps[i]
        return i


def test_each_token_is_followed_by_factor_minus_one_times_its_work(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock([0.040, 0.010, 0.020])
    monkeypatch.setattr(slowdown, "time", clock)
    closed: list[bool] = []

    def tokens() -> Iterator[int]:
        try:
            for i in range(3):
                yield clock.produce(i)  # the work of token i happens when it is asked for
        finally:
            closed.append(True)

    stream = slowed_tokens(tokens(), 1.5)
    assert [next(stream), next(stream)] == [0, 1] and clock.waits == [0.020, 0.005]
    stream.close()  # a client that leaves: the engine's own generator is closed too
    assert closed == [True]


def test_a_batch_step_is_followed_by_its_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock([0.030])
    monkeypatch.setattr(slowdown, "time", clock)
    step = slowed_call(lambda: [clock.produce(0)], 2.0)
    assert step() == [0] and clock.waits == [0.030]


def test_on_the_cpu_the_extra_time_is_computed_not_slept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU-bound server loses nothing to a thread that sleeps (others use the core): the
    injected time is a busy loop there, reading the thread's CPU time until it passed."""
    reads: list[float] = []

    class Ticking:
        now = 0.0

        @classmethod
        def thread_time(cls) -> float:
            cls.now += 0.001  # each read of the clock: 1 ms of the loop's CPU time
            reads.append(cls.now)
            return cls.now

        @staticmethod
        def sleep(seconds: float) -> None:
            raise AssertionError("a computing model does not sleep")

    monkeypatch.setattr(slowdown, "time", Ticking)
    slowdown.wait(0.010, spin=True)
    assert len(reads) == 11  # the end is read once, then the loop runs until 10 ms passed


def test_the_factor_comes_from_the_environment_and_a_bad_one_is_refused() -> None:
    assert injected({}) == 1.0
    assert injected({ENV: "1.2"}) == 1.2
    for bad in ("0.5", "fast", "nan"):
        with pytest.raises(ValueError, match=f"{ENV} must be a number ≥ 1"):
            injected({ENV: bad})


def test_a_slowed_engine_keeps_its_type_and_yields_the_same_tokens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from targets.model.engine import GenParams
    from targets.model.sim import SimEngine

    spec = "sim:ttft_ms=0,tpot_ms=0"
    plain = list(load_engine(spec).generate([1, 2, 3], GenParams(max_tokens=5)))
    monkeypatch.setenv(ENV, "2")
    engine = load_engine(spec)
    assert isinstance(engine, SimEngine)  # the batch models check the engine's type
    assert list(engine.generate([1, 2, 3], GenParams(max_tokens=5))) == plain
