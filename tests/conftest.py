"""Fixtures shared by the test suites. Keep this small: one fixture per shared, costly thing."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The GPT-2 BPE tokenizer every target model uses (built once into ~/.cache/patternbench)."""
    from targets.model import load_tokenizer, materialize

    return load_tokenizer(materialize("sim:ttft_ms=1,tpot_ms=1"))
