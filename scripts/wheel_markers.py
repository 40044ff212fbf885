"""List requirements a wheel folder lacks for one target Python (used by prepare-wheels and
device-run --dry-run).

    python scripts/wheel_markers.py 3.10 x86_64 REQUIREMENTS_FILE WHEEL_DIR [WHEEL_DIR...]

`pip download --python-version X` picks wheels for X but evaluates environment markers for the
Python running pip, so a dependency only needed on X (`tomli; python_version < "3.11"`,
aiohttp's `async-timeout`, anyio's `exceptiongroup`) is silently left out. This walks the
requirements file and every wheel's `Requires-Dist`, evaluates each marker for X on Linux/ARCH,
and prints one requirement per line that no wheel in the folders satisfies (name, version and
tags); nothing when the folders are complete. Exit status 0 either way.
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version


def environment(version: str, arch: str) -> dict[str, str]:
    return {"python_version": version, "python_full_version": f"{version}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": arch, "implementation_version": f"{version}.0", "extra": ""}


def supported(version: str, arch: str) -> set[Tag]:
    major, minor = (int(p) for p in version.split("."))
    platforms = [f"manylinux_2_{m}_{arch}" for m in range(40, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}",
                  f"linux_{arch}"]
    return {*cpython_tags((major, minor), platforms=platforms),
            *compatible_tags((major, minor), f"cp{major}{minor}", platforms)}


def wheels(folders: list[Path], tags: set[Tag]) -> dict[str, list[tuple[Version, Path]]]:
    """Wheels usable on the target, by canonical name."""
    out: dict[str, list[tuple[Version, Path]]] = {}
    for folder in folders:
        for path in folder.glob("*.whl"):
            name, version, _, wheel_tags = parse_wheel_filename(path.name)
            if wheel_tags & tags:
                out.setdefault(str(name), []).append((version, path))
    return out


def requires(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(wheel.read(meta).decode("utf-8"))
    return message.get_all("Requires-Dist") or []


def missing(version: str, arch: str, requirement_file: Path, folders: list[Path]) -> list[str]:
    env = environment(version, arch)
    available = wheels(folders, supported(version, arch))
    lines = [line.split("#", 1)[0].strip() for line in requirement_file.read_text().splitlines()]
    todo = [line for line in lines if line]
    seen: set[str] = set()
    lacking: list[str] = []
    while todo:
        text = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = f"{canonicalize_name(req.name)}{req.specifier}"
        if key in seen:
            continue
        seen.add(key)
        matches = [(v, p) for v, p in available.get(canonicalize_name(req.name), [])
                   if req.specifier.contains(v, prereleases=True)]
        if not matches:
            lacking.append(f"{req.name}{req.specifier}")
            continue
        todo.extend(requires(max(matches)[1]))
    return sorted(lacking)


def main() -> None:
    version, arch, requirement_file, *folders = sys.argv[1:]
    for line in missing(version, arch, Path(requirement_file), [Path(f) for f in folders]):
        print(line)


if __name__ == "__main__":
    main()
