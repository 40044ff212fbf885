"""Atomic file writes: a temp file in the same folder, then rename, so a reader (or an
interrupted run) only ever sees a complete old file or a complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_text(path: Path, parts: Iterable[str]) -> None:
    """Write the concatenation of `parts` to `path` atomically; no temp file is left on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for part in parts:
                fh.write(part)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
