"""Secrets never reach a run folder or a report: option values named like credentials are masked.

A scenario may carry credentials as target options (`external`'s `api_key`, the proxy's
`upstream_api_key`). The launcher needs them; nothing the harness writes does. `redact` returns a
copy of a JSON-like value with every such value replaced by `REDACTED`, at any depth:

    redact({"url": "http://h", "api_key": "sk-1"})  # {"url": "http://h", "api_key": "<redacted>"}

`harness.records.atomic.write_json` (manifest, summary, calibration) and the report's option lists
apply it, so a key given to a run is in neither its files nor its report.
"""

from __future__ import annotations

from typing import Any

REDACTED = "<redacted>"
SECRET_SUFFIXES = ("api_key", "apikey", "password", "secret", "auth_token", "access_token",
                   "bearer_token", "authorization")


def is_secret(name: str) -> bool:
    """Whether an option or field called `name` holds a credential."""
    lowered = name.lower().replace("-", "_")
    return lowered.endswith(SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    """`value` with every secret-named mapping entry masked (a non-empty value only)."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and is_secret(k) and v else redact(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
