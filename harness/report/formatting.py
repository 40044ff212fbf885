"""Turning values into short display strings, and escaping them for HTML.

Every function returns text that is already HTML-escaped, so page code can concatenate it.
An absent value is shown as an em dash, never as 0.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from harness.report.run_data import as_float

MISSING = "—"


def esc(value: object) -> str:
    """HTML-escape `str(value)`, quotes included (safe in text and in attribute values)."""
    return html.escape(str(value), quote=True)


def fmt_ms(value: object) -> str:
    """Milliseconds with one decimal and thousands separators: 1234.56 → '1,234.6'."""
    number = as_float(value)
    return MISSING if number is None else f"{number:,.1f}"


def fmt_tok_s(value: object) -> str:
    """Tokens per second as an integer: 316.4 → '316'."""
    number = as_float(value)
    return MISSING if number is None else f"{number:,.0f}"


def fmt_rate(value: object) -> str:
    """Requests per second: two decimals below 100, one above."""
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{number:,.2f}" if abs(number) < 100 else f"{number:,.1f}"


def fmt_fraction(value: object) -> str:
    """A 0–1 fraction as a percentage: 0.75 → '75%'."""
    number = as_float(value)
    return MISSING if number is None else f"{number * 100:.0f}%"


def fmt_count(value: object) -> str:
    number = as_float(value)
    return MISSING if number is None else f"{number:,.0f}"


def fmt_number(value: object) -> str:
    """A number of unknown meaning: integers as is, floats with up to 3 decimals."""
    number = as_float(value)
    if number is None:
        return MISSING
    if isinstance(value, int) or (number.is_integer() and abs(number) < 1e15):
        return f"{number:,.0f}"
    if abs(number) >= 1000:
        return f"{number:,.1f}"
    if abs(number) < 0.001:
        return f"{number:.2g}"
    return f"{number:.3f}".rstrip("0").rstrip(".")


def fmt_value(value: Any) -> str:
    """Any JSON value, compactly: numbers via fmt_number, lists joined, objects as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)  # ids, seeds, ports, counts: no separators
    if isinstance(value, float):
        return esc(fmt_number(value))
    if isinstance(value, str):
        return esc(value) if value else MISSING
    if value in ([], {}):
        return MISSING
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return esc(", ".join(str(v) for v in value))
    return esc(json.dumps(value, sort_keys=True, default=str))


def pretty_json(value: object) -> str:
    """Indented JSON, escaped, for a <pre> block."""
    return esc(json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def short_hash(value: object, length: int = 12) -> str:
    text = str(value) if value not in (None, "") else ""
    return esc(text[:length]) if text else MISSING


def parse_date(value: object, run_id: str = "") -> datetime | None:
    """An ISO-8601 string, else the `YYYYmmdd-HHMMSS` prefix of a run id, else None."""
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    try:
        return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def fmt_date(value: object, run_id: str = "") -> str:
    """'2026-11-27 17:35:00 UTC' style; a string that is not ISO-8601 is shown as given,
    and an absent one falls back to the run id's timestamp."""
    given = isinstance(value, str) and bool(value)
    when = parse_date(value, "" if given else run_id)
    if when is None:
        return esc(value) if given else MISSING
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    zone = when.strftime("%Z")
    return esc(f"{text} {zone}" if zone else text)
