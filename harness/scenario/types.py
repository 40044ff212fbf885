"""Scenarios are data: a TOML file loaded into frozen dataclasses.

A scenario names the model, the targets (serving patterns, each with options), the workload
(prompt and output lengths, streaming), the load (arrival kind and its levels) and the SLOs.
Example (`scenarios/default.toml`)::

    name = "default"
    model = "tiny"
    seed = 1234

    [workload]
    prompt_tokens = 128
    output_tokens = 64
    stream = true

    [load]
    kind = "closed"
    concurrency = [1, 8, 32]
    duration_s = 8
    warmup_s = 2

    [[targets]]
    name = "flask_threads"
    options = { threads = 8 }

The types here; reading a file into them is `harness.scenario.load`. A field's type and its
`setting(...)` rule (range, allowed values) are what the file may hold there: the decoder
(`harness.scenario.decode`) checks them. Nothing here reads command-line arguments: the CLI
resolves overrides and passes plain values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.gate.spec import Gate
from harness.scenario.capacity import DEFAULT_SHARE, CapacitySpec
from harness.scenario.client import ClientSettings, override
from harness.scenario.decode import DERIVED, error, partial, setting
from harness.scenario.fault import Fault, Rolling, check_fault_drivers, target_fault
from harness.scenario.workload import check_sessions
from harness.summary.record import Load
from harness.workload.lengths import PROFILES, Lengths
from harness.workload.prompt_sets import PROMPT_SETS

ARRIVAL_KINDS = ("closed", "constant", "poisson", "gamma", "ramp", "spike", "trace")
APIS = ("completions", "chat")
SEED_MODES = ("none", "per_request")
TARGET_WORKLOAD_FIELDS = ("stream", "api")  # what a target may set of `[workload]`


@dataclass(frozen=True)
class Workload:
    """What each request asks for. Token counts are in the model's tokenizer.

    `prompt_reuse`: false (default) gives every request of the run its own prompt (across points,
    targets, drivers and repeats), so no prefix cache can favour a target; true cycles every point
    through the same 256 prompts (the first releases' pool: a prefix cache then hits).
    `top_p` < 1, `top_k` > 0 and `min_p` > 0 are sent (vLLM's and our sampler's filters);
    defaults are left out of the body. `seed`: "none" (default) sends no `seed` field, as vLLM
    bench serve and GuideLLM; "per_request" sends the request's index as its sampling seed.
    Lengths (`harness.workload.lengths`): `prompt_lengths` / `output_lengths` (None:
    `prompt_tokens` ± `prompt_tokens_stdev`, normal), or `lengths` = "chat" / a table path
    (`length_table` rows). `prefixes` > 0 (`harness.workload`): a prompt is one of that many shared
    `prefix_tokens`-long prefixes + a distinct suffix of the drawn length. `turns` > 1
    (`harness.workload.sessions`): closed-loop users hold conversations of that many turns,
    `think_time_s` between them. `prompts`: "words" (default: prompts of pool words with drawn
    lengths) or a real prompt set (`harness.workload.prompt_sets`: "humaneval", "questions"),
    whose prompts keep their own lengths; `output_tokens` is then the `max_tokens` cap, and with
    `ignore_eos = false` each answer ends where the model stops.
    """

    prompt_tokens: int = setting(128, ge=1)  # a `{dist = ...}` table: prompt_lengths' mean
    output_tokens: int = setting(64, ge=1)
    stream: bool = True
    api: str = setting("completions", one_of=APIS)
    temperature: float = setting(0.0, ge=0)
    top_p: float = setting(1.0, gt=0, le=1)  # sent only below 1
    top_k: int = setting(0, ge=0)  # sent only above 0
    min_p: float = setting(0.0, ge=0, le=1)  # sent only above 0
    ignore_eos: bool = True
    prompt_tokens_stdev: float = setting(0.0, ge=0)
    output_tokens_stdev: float = setting(0.0, ge=0)
    prompt_reuse: bool = False
    seed: str = setting("none", one_of=SEED_MODES)
    prompt_lengths: Lengths | None = field(default=None, metadata=DERIVED)  # from a table
    output_lengths: Lengths | None = field(default=None, metadata=DERIVED)
    lengths: str = setting("", one_of=("", *PROFILES))  # or `{table = PATH}`: its path
    length_table: tuple[tuple[int, int], ...] = field(default=(), metadata=DERIVED)
    prefixes: int = setting(0, ge=0)
    prefix_tokens: int = setting(0, ge=0)  # ≥ 1 when prefixes > 0
    turns: int = setting(1, ge=1)
    think_time_s: float = setting(0.0, ge=0)
    prompts: str = setting("words", one_of=("words", *PROMPT_SETS))


@dataclass(frozen=True)
class LoadPoint:
    """One level of load: a closed-loop concurrency or an open-loop arrival rate.

    `duration_s` is the measured window, after `warmup_s` of unmeasured load. `max_requests`
    (0 = no cap) ends the point early. `params` holds arrival-shape extras (burstiness, ramp end…).
    A closed loop's `params["ramp_up_s"]` staggers its streams' first requests (`ramp_up_s`).

    `min_requests` (0 = none): the load goes on past `duration_s` until that many requests were
    sent after warm-up, but the measured window never passes `max_duration_s` (default 60 s);
    a point that stopped there without them is flagged `max_duration_hit` (`LoadJob.load_over`,
    the builtin driver only, and only for stationary kinds: closed, constant, poisson, gamma).
    """

    name: str
    kind: str
    duration_s: float
    warmup_s: float
    concurrency: int | None = None
    rate_rps: float | None = None
    max_requests: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    min_requests: int = 0
    max_duration_s: float = 60.0

    @property
    def ramp_up_s(self) -> float:
        """Closed loop: stream k of N sends its first request at k·ramp_up_s/N after the start.

        Default half the warm-up: staggered starts break the lock-step waves of N equal streams
        started at once, and the ramp ends inside the warm-up, so the window sees all N.
        """
        if self.kind != "closed":
            return 0.0
        return float(self.params.get("ramp_up_s", self.warmup_s / 2))

    def load(self) -> Load:
        """The `load` part of this point's summary.json entry."""
        return Load(kind=self.kind, concurrency=self.concurrency, rate_rps=self.rate_rps,
                    params=dict(self.params))


@dataclass(frozen=True)
class TargetConfig:
    """A target (registry name) with its options; `label` tells apart two runs of one target.

    `workload` overrides request-mode fields of the scenario's `[workload]` for this target only
    (`TARGET_WORKLOAD_FIELDS`, e.g. `workload = { stream = false }`), so one scenario can hold a
    streaming and a non-streaming run of the same target. Prompt and output lengths stay shared.
    `client` overrides `[client]` knobs (`harness.scenario.client.ClientSettings`) for this
    target only, checked like `[client]`: e.g. `client = { retry_refused = 4 }` beside a target
    whose clients do not retry, in one scenario. `fault` overrides a rolling `[fault]`'s keys
    for this target only (`harness.scenario.fault.Rolling`), e.g. `fault = { stop = "kill" }`:
    the variants of one deploy in one scenario.
    """

    name: str
    label: str
    options: Mapping[str, Any] = setting({})  # the target's own, checked when it starts
    workload: Mapping[str, Any] = partial(Workload, TARGET_WORKLOAD_FIELDS)
    client: Mapping[str, Any] = partial(ClientSettings)
    fault: Mapping[str, Any] = partial(Rolling)

    def effective_workload(self, base: Workload) -> Workload:
        return replace(base, **dict(self.workload))

    def effective_client(self, base: ClientSettings) -> ClientSettings:
        """The scenario's `[client]` (`base`) with this target's `client` knobs over it."""
        return override(base, self.client)

    def effective_fault(self, base: Fault | None, path: str = "fault") -> Fault | None:
        """The scenario's `[fault]` (`base`) with this target's `fault` keys over it."""
        return target_fault(base, self.fault, path)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    model: str
    seed: int
    driver: str
    workload: Workload
    points: tuple[LoadPoint, ...]
    targets: tuple[TargetConfig, ...]
    timeout_s: float = 300.0
    slo: Mapping[str, float] = field(default_factory=dict)
    gates: tuple[Gate, ...] = ()  # parsed at load: a malformed gate fails here (harness.gate)
    device: str = "auto"
    raw: Mapping[str, Any] = field(default_factory=dict)
    drivers: tuple[str, ...] = ()  # several: each target runs under each, labelled target@driver
    client: ClientSettings = field(default_factory=ClientSettings)
    cpu_affinity: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # target/driver
    repeats: int = 1  # the whole scenario N times, interleaved: A B C A B C (`harness.run.runner`)
    capacity: CapacitySpec | None = None  # kind = "capacity": points[0] is the first probe
    slo_share: float = DEFAULT_SHARE  # `[slo] share`: requests that must meet every limit
    fault: Fault | None = None  # `[fault]`: injected during each point (`harness.run.fault`)

    def with_overrides(
        self,
        *,
        targets: Sequence[str] | None = None,
        driver: str | None = None,
        model: str | None = None,
        device: str | None = None,
    ) -> Scenario:
        """A copy restricted to `targets` (labels or names), with driver/model/device replaced."""
        out = self
        if targets:
            wanted = set(targets)
            kept = tuple(t for t in self.targets if t.label in wanted or t.name in wanted)
            known = {t.label for t in self.targets} | {t.name for t in self.targets}
            missing = sorted(wanted - known)
            if missing:
                # Targets not in the scenario run with default options.
                kept += tuple(TargetConfig(name=m, label=m) for m in missing)
            out = replace(out, targets=kept)
        if driver:
            if driver != "builtin" and any(p.min_requests for p in out.points):
                raise error("load.min_requests", f"is run by the builtin driver only, "
                                                 f"not {driver!r}")
            check_sessions(out.workload.turns, out.points[0].kind, [driver])
            check_fault_drivers(out.fault, [driver])
            out = replace(out, driver=driver, drivers=(driver,))
        if model:
            out = replace(out, model=model)
        if device:
            out = replace(out, device=device)
        return out
