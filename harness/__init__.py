"""patternbench harness: one package (or module) per stage, in the order the data flows.

    scenario/     a TOML file → frozen, checked types (the one decoder, path-named errors)
    workload/     what each request asks for: lengths, prompts, sessions, a point's request pool
    arrivals.py   when requests are due: closed, constant, Poisson, gamma, ramp, spike, trace
    drivers/      builtin/, k6/, locust/: a LoadJob in, one Sample per request out
    samples.py    the Sample record: one per request, every time on one monotonic clock
    run/          runner → launcher → point (driver, liveness, fault) → run folder + manifest;
                  the capacity search, calibrate, `patternbench capacity URL`,
                  `patternbench parity URL` (parity/: ours beside vLLM bench, GuideLLM, AIPerf)
    telemetry/    GPU, host CPU/RSS, the /health probe and /metrics scrape around each point
    metrics/      pure: samples → TTFT, TPOT, ITL, E2E, throughput, goodput, their intervals
    summary/      summary.json: the typed, versioned record of what a run measured
    verdict/      sentences computed from the summary, each linked to its evidence
    compare.py    run vs run: per target × point deltas
    gate/         declarative gates, baselines, CI outputs (exit 0 / 1 / 2)
    report/       HTML pages, the index site, export, publish

Beside the pipeline:

    cli/          the `patternbench` command line: argument parsing and wiring only
    records/      how every stage stores: typed JSON records, atomic writes, redaction
    testing/      not a stage: `loopcheck`, a library for your own test suites
"""

__version__ = "0.1.0"
