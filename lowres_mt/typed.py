"""Build frozen dataclasses from plain dicts (YAML), checking keys and types.

Errors name the dotted key and the file so a user can fix the recipe at once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from lowres_mt.errors import UserError


def build(cls: type, data: Any, *, where: str, prefix: str = "") -> Any:
    """Return `cls(**data)` after checking every key and value type recursively."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: '{prefix or 'top level'}' must be a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = _join(prefix, unknown[0])
        raise UserError(f"{where}: unknown key '{key}' (allowed here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where=where, key=_join(prefix, name))
        minimum = fields[name].metadata.get("min")
        if minimum is not None and kwargs[name] < minimum:
            raise UserError(f"{where}: '{_join(prefix, name)}' must be at least {minimum}, got {value!r}")
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"{where}: missing required key '{_join(prefix, missing[0])}'")
    return cls(**kwargs)


def at_least(minimum: float, default: Any) -> Any:
    """A dataclass field whose value `build` checks against `minimum` (inclusive)."""
    return dataclasses.field(default=default, metadata={"min": minimum})


def to_dict(obj: Any) -> Any:
    """Plain-data view of a (nested) dataclass, for YAML/JSON dumps."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _coerce(tp: Any, value: Any, *, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        options = [a for a in args if a is not type(None)]
        for arg in options:
            try:
                return _coerce(arg, value, where=where, key=key)
            except UserError as err:
                errors.append(err)
        if len(errors) > 1:  # bool | Literal["auto"]: name every choice
            choices = " or ".join(" or ".join(map(repr, typing.get_args(a))) if typing.get_origin(a) is Literal
                                  else getattr(a, "__name__", str(a)) for a in options)
            raise UserError(f"{where}: '{key}' must be {choices}, got {_kind(value)} {value!r}")
        raise errors[0]
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise UserError(f"{where}: '{key}' must be one of {allowed}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where=where, prefix=key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: '{key}' must be a list, got {_kind(value)}")
        item = args[0] if args else Any
        if len(args) == 2 and args[1] is Ellipsis or len(args) <= 1:
            return tuple(_coerce(item, v, where=where, key=f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise UserError(f"{where}: '{key}' must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, where=where, key=f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be a mapping, got {_kind(value)}")
        vtype = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(vtype, v, where=where, key=f"{key}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # PyYAML reads `1e-4` as a string (YAML 1.1)
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise UserError(f"{where}: '{key}' must be {tp.__name__}, got {_kind(value)} {value!r}")
    return value


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
