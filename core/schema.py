"""Typed loading of TOML tables into frozen dataclasses, with errors a technician can act on.

Every configuration section is a frozen dataclass whose fields carry their defaults; this module
turns a parsed TOML table into that dataclass, refusing unknown keys, wrong types and bad values
with a message that names the key (``polling.interval_s``) and says what to write instead.

Field metadata understood here:
  ``check``: a callable taking the converted value and returning an error text or None;
  ``help``: one line shown after a type error, e.g. "seconds between polls, e.g. 60".
Secrets are typed :class:`Secret` so that no log line, repr or page can print them by accident.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class Secret:
    """A configured secret (community, key, token). Its text never appears in str/repr/logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call only where it is handed to the protocol that needs it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('<hidden>')"

    __str__ = __repr__


class ConfigError(Exception):
    """One or more problems in a configuration; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ---- reusable checks (return an error text, or None when the value is fine) ----


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "is not a TCP/UDP port; use a number from 1 to 65535"


def between(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def subnet(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not a subnet; write it like '192.168.1.0/24'"
    if "/" not in value:
        return f"{value!r} has no prefix length; write it like '{value}/24'"
    return None


def ip_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address; write it like '192.168.1.10'"
    return None


def each(check: Callable[[Any], str | None]) -> Callable[[tuple[Any, ...]], str | None]:
    """Apply ``check`` to every item of a list; the first failure names its index."""

    def check_all(values: tuple[Any, ...]) -> str | None:
        for index, item in enumerate(values):
            problem = check(item)
            if problem:
                return f"item {index}: {problem}"
        return None

    return check_all


def setting(
    default: Any, *, check: Callable[[Any], str | None] | None = None, help: str = ""
) -> Any:
    """A dataclass field with a default, an optional check and a help line."""
    meta = {"check": check, "help": help}
    if isinstance(default, list | dict):
        raise TypeError("use a tuple, not a mutable list, as a setting default")
    return dataclasses.field(default=default, metadata=meta)


def section(factory: Callable[[], T], *, help: str = "") -> Any:
    """A nested section (a dataclass) whose defaults are its own."""
    return dataclasses.field(default_factory=factory, metadata={"help": help})


# ---- the loader ----

_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a text in quotes",
    Secret: "a text in quotes",
}


def _describe(tp: Any) -> str:
    if tp in _TYPE_WORDS:
        return _TYPE_WORDS[tp]
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    """Convert one TOML value to ``tp``; on a mismatch append a problem and return a sentinel."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where, problems)
    if origin is Literal:
        if value in get_args(tp):
            return value
        problems.append(f"{where}: {_show(value)} is not allowed; use {_describe(tp)}")
        return _INVALID
    if origin is tuple:
        item_type = get_args(tp)[0]
        if not isinstance(value, list):
            problems.append(f"{where}: expected {_describe(tp)}, got {_show(value)}")
            return _INVALID
        items = [_convert(item_type, v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a table ([{where}]), got {_show(value)}")
            return _INVALID
        return _load(typing.cast(type, tp), value, where, problems)
    if tp is Secret:
        if isinstance(value, str):
            return Secret(value)
        problems.append(f"{where}: expected a text in quotes, got a {type(value).__name__}")
        return _INVALID
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int subclass in Python; TOML keeps them apart and so do we.
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    problems.append(f"{where}: expected {_describe(tp)}, got {_show(value)}")
    return _INVALID


_INVALID = object()


def _load(cls: type[T], table: dict[str, Any], prefix: str, problems: list[str]) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in table.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(fields))
            problems.append(f"{where}: unknown key{hint} (known keys here: {known})")
            continue
        field = fields[key]
        converted = _convert(hints[key], raw, where, problems)
        if converted is _INVALID:
            continue
        check = field.metadata.get("check")
        if check is not None and converted is not None:
            problem = check(converted)
            if problem:
                help_text = field.metadata.get("help")
                problems.append(f"{where}: {problem}" + (f" ({help_text})" if help_text else ""))
                continue
        values[key] = converted
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a cross-field check in __post_init__
        problems.append(f"{prefix or 'config'}: {exc}")
        return cls()


def load_dataclass(cls: type[T], table: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from ``table`` or raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    result = _load(cls, table, prefix, problems)
    if problems:
        raise ConfigError(problems)
    return result


def to_public_dict(obj: Any) -> Any:
    """The configuration as plain data with every secret left out (for pages and diagnostics)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, Secret):
                continue
            out[f.name] = to_public_dict(value)
        return out
    if isinstance(obj, tuple | list):
        return [to_public_dict(v) for v in obj]
    if isinstance(obj, Secret):
        return None
    return obj
