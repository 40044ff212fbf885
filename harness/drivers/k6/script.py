"""The k6 script for one load point, generated from the scenario.

Executors: `constant-vus` for closed loops (`shared-iterations` when `max_requests` caps them),
`constant-arrival-rate` for constant, poisson and gamma (k6 spaces arrivals evenly: poisson and
gamma become their mean rate, and the point is flagged `arrivals_approximated`), and
`ramping-arrival-rate` for ramp, spike and trace (the rate curve as stages; a trace replays its
1-second arrival counts, in its own order of token counts). k6 rates are integers per `timeUnit`,
so a rate of r req/s is written as round(1000·r) per 1000 s.

The script reads the request bodies as JSON (`open()` in the init context, shared by every VU via
`SharedArray`); iteration i sends body i mod n. Each request logs one JSON line (k6 `console.log`,
`--log-format raw`) with its timings, which `harness.drivers.k6.driver` turns into samples:
`{"i": iteration, "t0": ms wall clock at iteration start, "end": ms wall clock after the response,
"st": scenario start ms, "s": HTTP status, "e": k6 error_code, "err": error text, "r": resent
after no answer on a stale kept-alive connection ("EOF", a reset; never a failed connect),
"t": [blocked, looking_up, connecting, tls, sending, waiting, receiving] in ms, "n": output
tokens or -1, "src": where `n` came from ("usage": the usage chunk; "counted": no usage, the
stream's text-carrying events counted, one per token), "done": saw [DONE] (streaming) or a
parsed body}`.
`handleSummary` writes k6's own counters (`dropped_iterations`, iterations, max VUs) to a file.

Closed loops stagger their VUs' first iterations (`LoadPoint.ramp_up_s`): VU k of N sleeps
`closed_starts(point)[k]` before its first request. `ticks(executor)` lists when the
arrival-rate executors fire their iterations (k6's own formulas), so the driver can date each
iteration by the tick it was meant for.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from harness.arrivals import rate_curve
from harness.drivers.job import closed_starts
from harness.scenario.types import LoadPoint

RATE_SCALE = 1000  # rate r req/s → round(r · RATE_SCALE) iterations per RATE_SCALE s
APPROXIMATED = ("poisson", "gamma", "trace")

_SCRIPT = """\
import http from 'k6/http';
import { sleep } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const CFG = %(config)s;
const BODIES = new SharedArray('bodies', () => JSON.parse(open(CFG.bodies)));
const USAGE = /"completion_tokens"\\s*:\\s*(\\d+)/;
const TEXT = /"(?:text|content)"\\s*:\\s*"(?!")/g;
const PARAMS = { headers: CFG.headers, timeout: CFG.timeout, responseType: 'text' };
// No answer on a kept-alive connection the server had closed (not a failed connect: that names
// the dial): sent once more, as the builtin driver does (harness/drivers/builtin/resend.py).
const STALE = /^EOF$|reset by peer|broken pipe/;

export const options = %(options)s;

export default function () {
  const i = exec.scenario.iterationInTest;
  if (CFG.max_requests > 0 && i >= CFG.max_requests) { return; }
  if (CFG.starts.length > 0 && exec.vu.iterationInScenario === 0) {
    sleep(CFG.starts[(exec.vu.idInTest - 1) %% CFG.starts.length]);
  }
  const t0 = Date.now();
  let res = http.post(CFG.url, BODIES[i %% BODIES.length], PARAMS);
  const err0 = res.error || '';
  const resent = res.status === 0 && STALE.test(err0) && err0.indexOf('dial') < 0;
  if (resent) { res = http.post(CFG.url, BODIES[i %% BODIES.length], PARAMS); }
  const end = Date.now();
  const body = res.body || '';
  let n = -1;
  let src = null;
  let done = false;
  if (res.status === 200) {
    const m = USAGE.exec(body.length > 600 ? body.slice(-600) : body);
    if (m) {
      n = parseInt(m[1], 10);
      src = 'usage';
    } else if (CFG.stream) {
      n = (body.match(TEXT) || []).length;
      src = 'counted';
    }
    done = CFG.stream ? body.indexOf('data: [DONE]') >= 0 : m !== null;
  }
  const t = res.timings;
  console.log(JSON.stringify({
    i: i, t0: t0, end: end, st: exec.scenario.startTime, s: res.status, e: res.error_code,
    err: res.error || null, n: n, src: src, done: done, r: resent,
    t: [t.blocked, t.looking_up, t.connecting, t.tls_handshaking, t.sending, t.waiting,
        t.receiving],
  }));
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const vus = data.metrics.vus_max ? data.metrics.vus_max.values.value : null;
  const out = {};
  out[CFG.summary] = JSON.stringify({
    dropped_iterations: count('dropped_iterations'), iterations: count('iterations'),
    http_reqs: count('http_reqs'), vus_max: vus,
  });
  return out;
}
"""


def _duration(seconds: float) -> str:
    return f"{max(0, round(seconds * 1000))}ms"


def _rate(rps: float) -> int:
    return max(0, round(rps * RATE_SCALE))


def executor(point: LoadPoint, vus: int, timeout_s: float) -> dict[str, Any]:
    """The k6 scenario object for `point`; `vus` caps VUs (arrival-rate `maxVUs`)."""
    total = point.warmup_s + point.duration_s
    grace = _duration(timeout_s)
    if point.kind == "closed":
        assert point.concurrency is not None
        if point.max_requests:
            return {"executor": "shared-iterations", "vus": point.concurrency,
                    "iterations": point.max_requests, "maxDuration": _duration(max(1.0, total)),
                    "gracefulStop": grace}
        return {"executor": "constant-vus", "vus": point.concurrency,
                "duration": _duration(total), "gracefulStop": grace}
    curve = rate_curve(point)
    peak = max(r for _, r in curve)
    common = {"timeUnit": f"{RATE_SCALE}s",
              "preAllocatedVUs": max(1, min(vus, math.ceil(peak * 2) + 10)),
              "maxVUs": max(1, vus), "gracefulStop": grace}
    if point.kind in ("constant", "poisson", "gamma"):
        return {"executor": "constant-arrival-rate", "rate": _rate(curve[0][1]),
                "duration": _duration(total), **common}
    stages = [{"target": _rate(r1), "duration": _duration(t1 - t0)}
              for (t0, _), (t1, r1) in itertools.pairwise(curve)]
    return {"executor": "ramping-arrival-rate", "startRate": _rate(curve[0][1]),
            "stages": stages, **common}


def render(point: LoadPoint, *, url: str, bodies_path: str, summary_path: str,
           headers: dict[str, str], vus: int, timeout_s: float, stream: bool) -> str:
    """The whole k6 script for `point` (JavaScript source)."""
    config = {"url": url, "bodies": bodies_path, "summary": summary_path, "headers": headers,
              "timeout": _duration(timeout_s), "stream": stream,
              "max_requests": point.max_requests if point.kind != "closed" else 0,
              "starts": [round(s, 4) for s in closed_starts(point)]}
    options = {"scenarios": {"load": executor(point, vus, timeout_s)},
               "summaryTrendStats": ["avg", "p(50)", "p(99)", "max"],
               "discardResponseBodies": False, "noConnectionReuse": False}
    return _SCRIPT % {"config": json.dumps(config, indent=2),
                      "options": json.dumps(options, indent=2)}


def ticks(ex: dict[str, Any]) -> list[float]:
    """When an arrival-rate executor `ex` (from `executor`) fires iterations: seconds after its
    start, in order (k6's formulas: `constant-arrival-rate` at j·period from 0; each event n of
    `ramping-arrival-rate` where the rate's integral reaches n). Empty for closed loops."""
    unit = float(RATE_SCALE)  # timeUnit: RATE_SCALE s
    if ex["executor"] == "constant-arrival-rate":
        total = _ms(ex["duration"]) / 1000
        if ex["rate"] <= 0:
            return []
        period = unit / ex["rate"]
        return [j * period for j in range(math.ceil(total / period))
                if j * period < total]
    if ex["executor"] != "ramping-arrival-rate":
        return []
    out: list[float] = []
    start = done = count = 0.0
    frm = ex["startRate"] / unit
    n = 1.0
    for stage in ex["stages"]:
        to, dur = stage["target"] / unit, _ms(stage["duration"]) / 1000
        count += dur * ((to - frm) / 2 + frm)
        while n <= count + 1e-9:
            if frm != to:
                x = (frm * dur - math.sqrt(max(0.0, dur * (frm * frm * dur
                                                            + 2 * (n - done) * (to - frm)))))
                out.append(start + x / (frm - to))
            else:
                out.append(start + (n - done) / to)
            n += 1
        done, frm, start = count, to, start + dur
    return out


def _ms(duration: str) -> float:
    assert duration.endswith("ms"), duration
    return float(duration[:-2])
