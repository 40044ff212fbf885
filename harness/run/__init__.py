"""Running a scenario: the stage that drives the others. `runner` opens each target (`launcher`)
and runs each load point (`point`: driver → samples → metrics, watched by `liveness`, with the
scenario's `fault`); `capacity` is the search over load levels; `folder` owns a run folder's
paths and `manifest` what the run was (the scenario as run: `resolved`; the host and its package
versions: `machine`); `console` prints progress; `calibrate` measures the drivers' own overhead
into a `calibration`; `capacity_url` is `patternbench capacity URL` against any server.
"""
