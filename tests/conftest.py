"""Fixtures shared by the test suites. Keep this small: one fixture per shared, costly thing.

`make test-fast` runs `pytest -m "not slow"`: every test that starts no server process, spawns no
`python -m targets`, runs no CLI end to end and loads no real model. Whole suites are slow by
folder (`SLOW_SUITES`); a slow test elsewhere carries `@pytest.mark.slow` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
SLOW_SUITES = {
    "contract": "every test runs against a fleet of target processes on the real tiny model",
    "e2e": "every test drives the CLI, target processes or the real drivers end to end",
    "bench": "micro-benchmarks (pytest-benchmark), the engine step on the real tiny model",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in a `SLOW_SUITES` folder `slow`."""
    for item in items:
        if any(item.path.is_relative_to(TESTS / suite) for suite in SLOW_SUITES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The GPT-2 BPE tokenizer every target model uses (built once into ~/.cache/patternbench;
    the same object the job builder uses)."""
    from tests.jobs import gpt2_tokenizer

    return gpt2_tokenizer()
