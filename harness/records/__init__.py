"""Records on disk: frozen dataclasses as JSON with a schema (`typed_json`), files written
atomically (`atomic`), and credentials masked before anything is written (`redact`).

Every stage that stores something writes through here; nothing here knows a stage.
"""
