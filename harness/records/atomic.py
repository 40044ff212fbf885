"""Atomic file writes: every file patternbench stores (samples, telemetry, JSON, report pages).

A file is written to a temp file in the same folder, flushed to disk (`fsync`), given mode 0644
(readable by a web server publishing `reports/`) and renamed over the old one, so a reader, or
an interrupted run, only ever sees a complete old file or a complete new one:

    write_text(run / "notes.txt", "hello\\n")
    write_text(path, (sample.to_json() + "\\n" for sample in samples))  # streamed, no big string
    write_json(path, {"run": "..."})  # indented JSON, then a newline; read back with read_json
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.records.redact import redact

FILE_MODE = 0o644


def write_text(path: Path, text: str | Iterable[str]) -> Path:
    """Write `text` (or the concatenation of its parts), UTF-8, to `path` atomically, creating
    its folder; return `path`. No temp file is left behind on error."""
    parts = (text,) if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for part in parts:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: Any) -> Path:
    """`data` as indented JSON (values JSON cannot hold written as `str`), atomically, with
    credentials masked (`harness.records.redact.redact`: no run file holds a key)."""
    return write_text(path, [json.dumps(redact(data), indent=2, default=str), "\n"])


def read_json(path: Path) -> Any:
    """The JSON value in `path`; raises OSError or ValueError as `json.loads` does."""
    return json.loads(path.read_text(encoding="utf-8"))
