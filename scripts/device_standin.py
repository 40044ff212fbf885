"""Build a stand-in for a GPU machine's Python packages, for `scripts/device-run --dry-run`.

    .venv/bin/python scripts/device_standin.py /tmp/x/standin   # prints the folder to add

The GPU machine has torch and transformers (and what they depend on) but none of patternbench's
other packages. This links exactly those distributions — torch, transformers and their
dependency closure, markers evaluated, extras ignored — from the running environment into one
folder, so a fresh venv that adds it to `sys.path` (a .pth file) sees what the GPU machine
would, and must get everything else from wheels/ offline.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ROOTS = ("torch", "transformers")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: tuple[str, ...]) -> dict[str, metadata.Distribution]:
    """Distribution name → distribution, for `roots` and everything they require."""
    from packaging.requirements import Requirement  # packaging comes with transformers

    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = _normal(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        found[name] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_name(text))
    return found


def top_level(dist: metadata.Distribution) -> set[str]:
    """The top-level names (packages, modules, .dist-info) a distribution installed."""
    names = set()
    for file in dist.files or ():
        first = Path(str(file)).parts[0]
        if first not in ("..", "__pycache__") and not first.endswith(".pth"):
            names.add(first)
    return names


def main() -> None:
    dest = Path(sys.argv[1]).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    dists = closure(ROOTS)
    for _, dist in sorted(dists.items()):
        base = Path(str(dist.locate_file("")))
        for entry in top_level(dist):
            source, link = base / entry, dest / entry
            if source.exists() and not link.exists():
                link.symlink_to(source)
    print(dest)
    print(f"device_standin: {len(dists)} distributions: {', '.join(sorted(dists))}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
