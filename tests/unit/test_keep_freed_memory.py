"""`keep_freed_memory`: a forward pass's large temporaries reuse heap pages instead of faulting."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# Several megabyte-sized tensors live at once and are freed, ten times over, as in a forward
# pass; the child prints how many pages it faulted in meanwhile (after a first, warming round).
CHILD = """
import resource, sys, torch
from targets.model.tuning import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
sizes = [1 << 18, 3 << 18, 1 << 20, 5 << 19, 1 << 21]
def forward():
    held = [torch.empty(n).fill_(1) for n in sizes]
    del held
forward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    forward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


# glibc starts mapping blocks of 128 KiB and up fresh, then raises that threshold each time it
# unmaps a larger block, so how much an unpinned run faults depends on the order of its frees
# (measured here: 9,206 to 57,302 pages for the same child). The baseline pins glibc's documented
# starting threshold, so it is the same run to run; `keep` overrides it in-process either way.
BASELINE_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 << 10)}


def faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if mode == "default":
        env |= BASELINE_ENV
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=120, env=env)
    return int(out.stdout.split()[-1])


@pytest.mark.slow  # two child interpreters import torch (~5 s): not for make test-fast
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_freed_temporaries_are_reused_instead_of_faulted_in_again() -> None:
    default, kept = faults("default"), faults("keep")
    assert kept * 3 < default, (default, kept)
