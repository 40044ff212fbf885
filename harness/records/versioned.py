"""Record files that carry a `schema_version` (`manifest.json`, `calibration.json`): written
with their values exact, read back through one version check and one message.

    write_json(path, exact(manifest))       # numbers as given (typed_json.encode rounds them)
    manifest = decode_versioned(Manifest, data, file="manifest.json", current=1, absent=1)

A file of another version is refused with a line saying which version wrote it; one that does
not fit the types, with the path of the first field that does not (`typed_json.decode`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from harness.records.typed_json import RecordError, decode

T = TypeVar("T")


def exact(value: Any) -> Any:
    """A record (a dataclass) or a value as the JSON data the file holds: fields in order,
    tuples as lists, numbers exactly as given (a setting is recorded as it was set, not rounded
    like a measurement), values JSON cannot hold as strings (as `write_json` writes them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def decode_versioned(cls: type[T], data: Any, *, file: str, current: int, absent: int,
                     error: type[RecordError] = RecordError) -> T:
    """`data` (the parsed `file`) as `cls` when it is of schema `current`; a file without
    `schema_version` is of schema `absent` (what the first releases wrote). Raises `error`
    (a `RecordError`) with one line: the version that wrote it, or the field that does not fit."""
    if not isinstance(data, dict):
        raise error(f"{file} does not hold a JSON object")
    version = data.get("schema_version", absent)
    if version != current:
        raise error(version_message(file, version, current))
    try:
        return decode(cls, data)
    except RecordError as exc:
        raise error(f"{file} does not fit schema {current}: {exc}") from None


def version_message(file: str, version: object, current: int) -> str:
    """Why a `file` of schema `version` cannot be read by this patternbench (schema `current`)."""
    if not isinstance(version, int) or isinstance(version, bool):
        return f"{file} has a schema_version that is not a number ({version!r})"
    if version < current:
        return (f"{file} was written by an older version of patternbench (schema {version}; "
                f"this one reads {current}): read it with the version that wrote it")
    return (f"{file} was written by a newer version of patternbench (schema {version}; this "
            f"one reads {current}): upgrade patternbench")
