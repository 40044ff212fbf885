"""Frozen dataclasses as JSON records: encode, decode with a path in every error, JSON Schema.

The stages that write a contract file (summary.json) build frozen dataclasses; this module turns
them into JSON and back, and derives a JSON Schema from the same type hints, so the file, the
reader and the schema cannot drift apart. Supported field types: `bool`, `int`, `float`, `str`,
`None`, `Literal[...]`, `X | None`, `tuple[X, ...]`, `tuple[X, Y]`, `dict[str, X]`, nested
frozen dataclasses, and `Any` (an opaque JSON value, e.g. a tool's own counters).

    @dataclass(frozen=True)
    class Span:
        start_s: float
        end_s: float | None = None

    encode(Span(1.0))                    == {"start_s": 1.0, "end_s": None}
    decode(Span, {"start_s": 1})         == Span(1.0)
    decode(Span, {"end_s": 2})           raises RecordError("start_s: missing")
    schema(Span)["required"]             == ["start_s"]

Floats are written rounded to `FLOAT_DIGITS` decimals (milliseconds to 0.1 µs). JSON has no
infinity or NaN: a non-finite float is written as null, which `decode` then refuses wherever the
field does not allow None (the builders never produce one: `Distribution.of` drops them).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin


def doc(text: str, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field documented for the schema and docs/results.md (`metadata["doc"]`,
    read by `schema_of`); a dict or list default is copied per instance."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"doc": text})
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"doc": text})
    return dataclasses.field(default=default, metadata={"doc": text})

FLOAT_DIGITS = 4
T = TypeVar("T")


class RecordError(ValueError):
    """A JSON value does not fit the record type; the message starts with the field path."""


def encode(value: Any) -> Any:
    """A dataclass (or a container of them) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, FLOAT_DIGITS)
    return value


def decode(cls: type[T], data: Any, path: str = "") -> T:
    """`data` (parsed JSON) as an instance of the dataclass `cls`; `RecordError` if it does not
    fit. Unknown keys are an error too: a record carries exactly its fields."""
    return typing.cast(T, _decode(cls, data, path))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """`cls`'s resolved field types, once per class: every sample of a run file is decoded."""
    return typing.get_type_hints(cls)


def _where(path: str) -> str:
    return path or "(top level)"


def _decode(tp: Any, data: Any, path: str) -> Any:
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(tp, data, path)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return _decode_union(args, data, path)
    if origin is typing.Literal:
        if data not in args:
            raise RecordError(f"{_where(path)}: expected one of {list(args)}, got {data!r}")
        return data
    if origin is tuple:
        return _decode_tuple(args, data, path)
    if origin is dict:
        if not isinstance(data, dict):
            raise RecordError(f"{_where(path)}: expected an object, got {type(data).__name__}")
        return {str(k): _decode(args[1], v, f"{path}.{k}" if path else str(k))
                for k, v in data.items()}
    return _decode_scalar(tp, data, path)


def _decode_tuple(args: tuple[Any, ...], data: Any, path: str) -> tuple[Any, ...]:
    """`tuple[X, ...]` (any length) or `tuple[X, Y]` (exactly as many items as types)."""
    if not isinstance(data, list):
        raise RecordError(f"{_where(path)}: expected a list, got {type(data).__name__}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
    if len(data) != len(args):
        raise RecordError(f"{_where(path)}: expected {len(args)} items, got {len(data)}")
    return tuple(_decode(a, v, f"{path}[{i}]")
                 for i, (a, v) in enumerate(zip(args, data, strict=True)))


def _decode_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise RecordError(f"{_where(path)}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecordError(f"{_where(path)}: unknown field(s) {unknown}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            values[name] = _decode(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{sub}: missing")
    return cls(**values)


def _decode_union(args: tuple[Any, ...], data: Any, path: str) -> Any:
    if data is None:
        if type(None) in args:
            return None
        raise RecordError(f"{_where(path)}: must not be null")
    options = [a for a in args if a is not type(None)]
    errors = []
    for option in options:
        try:
            return _decode(option, data, path)
        except RecordError as exc:
            errors.append(str(exc))
    raise RecordError(errors[0] if len(errors) == 1 else f"{_where(path)}: fits no type "
                      f"of {[getattr(o, '__name__', str(o)) for o in options]}")


def as_scalar(tp: Any, value: Any) -> tuple[bool, Any]:
    """Whether `value` (parsed JSON or TOML) is of the scalar type `tp` (bool, int, float, str;
    an int is a float too, a bool is neither), and the value as that type. The TOML scenario
    decoder (`harness.scenario.decode`) reads scalars with this too."""
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported field type {tp!r}")  # a declaration bug, not bad data


def _decode_scalar(tp: Any, data: Any, path: str) -> Any:
    if tp is type(None):
        if data is not None:
            raise RecordError(f"{_where(path)}: expected null, got {data!r}")
        return None
    ok, data = as_scalar(tp, data)
    if not ok:
        raise RecordError(f"{_where(path)}: expected {tp.__name__}, got {data!r}")
    return data


def schema(cls: type, *, title: str | None = None, description: str | None = None,
           schema_id: str | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the dataclass `cls`, nested dataclasses under `$defs`.

    Each property's description is the dataclass field's `metadata["doc"]` when it has one."""
    defs: dict[str, Any] = {}
    root = _schema_of_dataclass(cls, defs)
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if schema_id:
        out["$id"] = schema_id
    out["title"] = title or cls.__name__
    if description:
        out["description"] = description
    return out | root | {"$defs": dict(sorted(defs.items()))}


def _schema_of_dataclass(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        prop = _schema_of(hints[f.name], defs)
        if f.metadata.get("doc"):
            prop = {"description": f.metadata["doc"]} | prop
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object"}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc and not doc.startswith(cls.__name__ + "("):
        out["description"] = " ".join(doc.split())
    return out | {"properties": props, "required": required, "additionalProperties": False}


def _schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if tp is Any:
        return {}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # placeholder: a recursive type refers to itself
            defs[tp.__name__] = _schema_of_dataclass(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    origin, args = get_origin(tp), get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_schema_of(a, defs) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _schema_of(args[0], defs)}
    if origin is tuple:
        return {"type": "array", "prefixItems": [_schema_of(a, defs) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1], defs)}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string",
              type(None): "null"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"unsupported field type {tp!r}")
