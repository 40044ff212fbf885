"""The one scenario decoder: a TOML table into its frozen dataclass, or a one-line `ScenarioError`.

Each table's dataclass declares what it accepts: the type of each field and, with `setting`,
its range or allowed values. `decode` checks a table against that declaration; every error
names the TOML path and says what is wrong, in one format (`<path>: <problem>`):

    @dataclass(frozen=True)
    class Disconnect:
        after_tokens: int = setting(1, ge=1)           # a whole number ≥ 1, default 1
        share: float = setting(1.0, gt=0, le=1)        # a number in (0, 1]

    decode(Disconnect, {"share": 0.5}, "fault")      == Disconnect(1, 0.5)
    decode(Disconnect, {"shar": 0.5}, "fault")       # fault: unknown key 'shar'; expected one
                                                     #   of after_tokens, share
    decode(Disconnect, {"after_tokens": 0}, "fault") # fault.after_tokens: must be ≥ 1, got 0
    decode(Disconnect, {"share": "x"}, "fault")      # fault.share: must be a number, got 'x'

Types understood: `bool`, `int`, `float` (a TOML int is accepted and converted), `str`,
`Literal[...]`, `X | None` (None only as a default: TOML has no null), `tuple[X, ...]` (a TOML
list; a lone value is a one-item list, so `concurrency = 8` reads as `[8]`), `dict[str, X]` /
`Mapping[str, X]` (a table of any keys), a nested dataclass (a table decoded the same way) and
`Any` (taken as written). A rule on a list or a table applies to each item (`nonempty` to the
list itself too). A field without a default must be given. `DERIVED` fields are not TOML keys:
the reader computes them and passes them in `given`. `partial(cls)` is a table of some of `cls`'s
keys, checked as `cls` checks them and kept as a dict of the keys given (a target's overrides).

Rules that tie two fields together (`ramp_up_s` ≤ `warmup_s`) are not declarations: the table's
reader checks them after decoding and raises `error(path, problem)`, in the same format.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from harness.records.typed_json import as_scalar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ScenarioError(ValueError):
    """A scenario file is malformed; the one-line message starts with the TOML path."""


def error(path: str, problem: str) -> ScenarioError:
    """The error for `problem` at the TOML `path` ("" is the file's top level)."""
    return ScenarioError(f"{path or 'top level'}: {problem}")


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field's value must be beyond its type: `ge` / `gt` / `le` bound a number,
    `one_of` lists the values allowed, `nonempty` refuses an empty list or string."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    one_of: tuple[Any, ...] = ()
    nonempty: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` (already of the field's type), or None."""
        if self.one_of and value not in self.one_of:
            return "must be one of " + ", ".join(repr(v) for v in self.one_of)
        if self.nonempty and value == "":
            return "must not be empty"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        low = self.ge if self.ge is not None else self.gt
        if low is not None and self.le is not None:
            ok = (value >= low if self.gt is None else value > low) and value <= self.le
            left = "[" if self.gt is None else "("
            return None if ok else f"must be in {left}{low:g}, {self.le:g}]"
        if self.ge is not None and value < self.ge:
            return f"must be ≥ {self.ge:g}"
        if self.gt is not None and value <= self.gt:
            return f"must be > {self.gt:g}"
        if self.le is not None and value > self.le:
            return f"must be ≤ {self.le:g}"
        return None


NO_RULE = Rule()
DERIVED: Mapping[str, Any] = {"derived": True}
"""The metadata of a field that is not a TOML key: the reader computes it and passes it in
`given` (`field(default=None, metadata=DERIVED)`)."""


def setting(default: Any = dataclasses.MISSING, *, ge: float | None = None,
            gt: float | None = None, le: float | None = None, one_of: Collection[Any] = (),
            nonempty: bool = False) -> Any:
    """A dataclass field read from TOML with a rule (see `Rule`); no `default`: required.
    A dict default is copied per instance."""
    meta = {"rule": Rule(ge, gt, le, tuple(one_of), nonempty)}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def partial(of: type, keys: Collection[str] | None = None) -> Any:
    """A `Mapping[str, Any]` field: a table of `of`'s keys (only `keys`, when given), each checked
    as `of` declares it, kept as a dict of the keys the table sets."""
    return dataclasses.field(default_factory=dict, metadata={"partial": (of, keys)})


def decode(cls: type[T], raw: Any, path: str, *, given: Mapping[str, Any] | None = None) -> T:
    """The table `raw` at TOML `path` as an instance of the frozen dataclass `cls`.

    `given`: field values the caller read itself (derived fields, or a key whose table form it
    parsed); their keys are not decoded again. `ScenarioError` names the first bad key."""
    return _decode(cls, raw, path, given=given or {})


def decode_variant(variants: Mapping[str, type[T]], raw: Any, path: str, *, tag: str = "kind",
                   default: str | None = None) -> tuple[str, T]:
    """A table whose `tag` key (e.g. `kind`) picks the dataclass for its other keys: returns
    the tag's value and the decoded table. No `default`: the tag must be given."""
    table = _table(raw, path)
    if tag not in table and default is None:
        raise error(_join(path, tag), "must be given")
    name = table.get(tag, default)
    if not isinstance(name, str) or name not in variants:
        allowed = ", ".join(repr(v) for v in variants)
        raise error(_join(path, tag), f"must be one of {allowed}, got {name!r}")
    rest = {k: v for k, v in table.items() if k != tag}
    return name, _decode(variants[name], rest, path, given={}, tag=(tag, name))


def _decode(cls: type[T], raw: Any, path: str, *, given: Mapping[str, Any],
            keys: Collection[str] | None = None, tag: tuple[str, str] | None = None) -> T:
    table = _table(raw, path)
    fields = dataclasses.fields(cls)
    allowed = [f.name for f in fields if not f.metadata.get("derived")]
    allowed = [k for k in allowed if k in keys] if keys is not None else allowed
    unknown = [str(k) for k in table if k not in allowed]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        where = f" for {tag[0]} {tag[1]!r}" if tag else ""
        expected = ", ".join(sorted([*allowed, *([tag[0]] if tag else [])])) or "none"
        raise error(path, f"unknown key{plural} {', '.join(map(repr, unknown))}{where}; "
                          f"expected one of {expected}")
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for f in fields:
        if f.name in given:
            continue
        sub = _join(path, f.name)
        if f.name in table:
            values[f.name] = _field(f, hints[f.name], table[f.name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise error(sub, "must be given")
    return cls(**values)


def _field(f: dataclasses.Field[Any], tp: Any, value: Any, path: str) -> Any:
    if "partial" in f.metadata:
        of, keys = f.metadata["partial"]
        table = _table(value, path)
        whole = _decode(of, table, path, given={}, keys=keys)
        return {k: getattr(whole, k) for k in table}
    return _value(tp, value, path, f.metadata.get("rule", NO_RULE))


def _value(tp: Any, value: Any, path: str, rule: Rule) -> Any:
    """`value` as the type `tp`, checked against `rule`."""
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode(tp, value, path, given={})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]  # only `X | None` is supported
        return _value(tp, value, path, rule)
    if origin is tuple:
        return _tuple(args[0], value, path, rule)
    if origin in (dict, Mapping):
        table = _table(value, path)
        if rule.nonempty and not table:
            raise error(path, f"must not be empty, got {value!r}")
        return {k: _value(args[1], v, _join(path, k), rule) for k, v in table.items()}
    if origin is typing.Literal:
        rule, checked = dataclasses.replace(rule, one_of=args), value
    else:
        checked = _scalar(tp, value, path)
    problem = rule.problem(checked)
    if problem:
        raise error(path, f"{problem}, got {value!r}")  # as written: `-1`, not `-1.0`
    return checked


def _tuple(item: Any, value: Any, path: str, rule: Rule) -> tuple[Any, ...]:
    """A TOML list as a tuple, its items checked; a lone value is a one-item list."""
    if not isinstance(value, (list, tuple)):
        return (_value(item, value, path, rule),)
    if rule.nonempty and not value:
        raise error(path, f"must not be empty, got {value!r}")
    return tuple(_value(item, v, f"{path}[{i}]", rule) for i, v in enumerate(value))


_WHAT = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(tp: Any, value: Any, path: str) -> Any:
    ok, value = as_scalar(tp, value)
    if not ok:
        raise error(path, f"must be {_WHAT[tp]}, got {value!r}")
    return value


def _table(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise error(path, f"must be a table, got {value!r}")
    return value


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _join(path: str, key: str) -> str:
    """`path.key`, the key quoted when TOML would need it (`slo."a.b"`)."""
    key = key if _BARE.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{key}" if path else key
