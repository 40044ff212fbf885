"""The scenario: a TOML file read into frozen types (`types`) by `load`, each table
checked by its own module (`client`, `capacity`, `fault`, `targets`, `workload`) with the one
value checker `values`: a bad value is a one-line `ScenarioError` naming its TOML path.
"""
