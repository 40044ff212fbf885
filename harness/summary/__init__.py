"""The summary: `summary.json`, the typed, versioned record of what a run measured (`record`,
with its parts `fault` and `spike`). Its JSON Schema and docs/results.md are generated from the
types by `python -m harness.records.docs`.
"""
