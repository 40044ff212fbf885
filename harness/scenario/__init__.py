"""The scenario: a TOML file read into frozen types (`types`) by `load`. Each table is declared
by a dataclass beside its reader (`client`, `capacity`, `fault`, `points` for `[load]`,
`targets`, `workload`), and one decoder (`decode`) turns a table into it: a bad key or value
is a one-line `ScenarioError` naming its TOML path, e.g. `load.concurrency[2]: must be ≥ 1`.
"""
