"""Records on disk: frozen dataclasses as JSON with a schema (`typed_json`), a record file's
`schema_version` checked in one place (`versioned`), files written atomically (`atomic`), and
credentials masked before anything is written (`redact`). `docs` (`python -m
harness.records.docs`) writes the JSON Schemas and docs/results.md of the three record files
(summary.json, manifest.json, calibration.json) from their types.

Every stage that stores something writes through here.
"""
