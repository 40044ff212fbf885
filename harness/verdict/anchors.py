"""The ids of a report page's sections, so the verdict can link each sentence to its evidence.

One function per kind of thing a sentence can point at; the page, the tables and the charts use
the same functions, so a link and its target cannot drift apart.

    >>> target_anchor(["flask_threads", "fastapi_batching"], "fastapi_batching")
    'target-1'
    >>> point_anchor(["flask_threads"], "flask_threads", "c8")
    'target-0-c8'
    >>> chart_anchor("pareto")
    'chart-pareto'
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def target_anchor(targets: Sequence[str], target: str) -> str:
    """The id of `target`'s section (`targets`: the run's series labels, in report order)."""
    return f"target-{list(targets).index(target)}"


def point_anchor(targets: Sequence[str], target: str, point: str) -> str:
    """The id of one load point's row in `target`'s table."""
    return f"{target_anchor(targets, target)}-{_slug(point)}"


def chart_anchor(kind: str, detail: str = "") -> str:
    """The id of a chart's figure: `kind` (pareto, ttft_cdf, gantt, ...), optional `detail`."""
    return f"chart-{_slug(kind)}" + (f"-{_slug(detail)}" if detail else "")


def section_anchor(name: str) -> str:
    """The id of a page section by name (verdict, charts, results, telemetry, production)."""
    return _slug(name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
