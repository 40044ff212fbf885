"""The summary: `summary.json`, the typed, versioned record of what a run measured
(`record`, with its parts `fault` and `spike`), and `docs`, which writes its JSON Schema and
docs/results.md from the types.
"""
