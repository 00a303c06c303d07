"""Firmware the MSP flagged as outdated: its rules, version comparison, the check.

The rules come from the MSP (home's ``[[report.firmware]]``, see docs/report.md); each device's
version from what it says of itself (discovery's SNMP identity on the box). A version string is
compared by :func:`version_key`, which reads the odd forms agents give:

* leading words are dropped ("V2.10.3", "Firmware Ver. 1.04", "version 7");
* numbers compare as numbers (2.10 > 2.9) and trailing zeros do not count (1.2.0 == 1.2);
* "build", "rev", "patch" are separators ("V2.10.3 build 7" > "2.10.3");
* a letter after a number is a later patch ("1.2a" > "1.2", but < "1.2.1");
* alpha / beta / rc / pre / dev mark a pre-release ("1.2rc1" < "1.2").

A string without any digit has no key: it is never judged older than a minimum (it can only
match a flagged version by its exact text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from core.report.inputs import DeviceFirmware, FirmwareRule

_TOKEN = re.compile(r"\d+|[a-z]+")
_SEPARATORS = frozenset({"build", "bld", "rev", "patch", "sp", "release"})
_PRE = {"dev": 0, "alpha": 1, "beta": 2, "pre": 3, "preview": 3, "rc": 4}
_KEYS = frozenset({"vendor", "model", "minimum", "flagged", "reason"})
MAX_TEXT = 200

VersionKey = tuple[tuple[int, int, str], ...]
_END = (1, 0, "")


class FirmwareRuleError(ValueError):
    """A firmware rule cannot be used; the message names the entry, the key and the fix."""


def version_key(text: str) -> VersionKey | None:
    """A sortable key of a version string (see the module), None when it has no digit."""
    tokens = _TOKEN.findall(text.casefold())
    while tokens and not tokens[0].isdigit():
        tokens.pop(0)  # "v", "firmware ver", "version"
    if not tokens:
        return None
    key: list[tuple[int, int, str]] = []
    for i, t in enumerate(tokens):
        if t.isdigit():  # any script's digits ("١٢٣"); compared by length, then digit by digit:
            digits = "".join(str(unicodedata.digit(c)) for c in t).lstrip("0")  # no int(): a
            key.append((3, len(digits), digits))  # 10,000-digit "version" would raise
        elif t in _PRE:
            key.append((0, _PRE[t], ""))
        elif t in _SEPARATORS and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            continue  # "build 7": the 7 counts, the word does not
        else:
            key.append((2, 0, t))
    while key and key[-1] == (3, 0, ""):  # a zero: no digit left
        key.pop()  # 1.2.0 == 1.2
    return (*key, _END)


def same_version(a: str, b: str) -> bool:
    ka, kb = version_key(a), version_key(b)
    if ka is not None and kb is not None:
        return ka == kb
    return a.strip().casefold() == b.strip().casefold()


def older_than(version: str, minimum: str) -> bool:
    """``version`` is known to come before ``minimum`` (False when either has no digit)."""
    kv, km = version_key(version), version_key(minimum)
    return kv is not None and km is not None and kv < km


def _text(entry: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise FirmwareRuleError(f"{where}.{key}: a text of at most {MAX_TEXT} characters")
    return value.strip()


def parse_rules(table: Any, where: str = "report.firmware") -> tuple[FirmwareRule, ...]:
    """The MSP's rules from a TOML array of tables, e.g.::

        [[report.firmware]]
        vendor = "Brother"          # shell-style pattern, case-insensitive; default "*"
        model = "HL-L2350*"         # default "*"
        minimum = "1.60"            # versions before this are outdated
        flagged = ["1.52"]          # exact versions to replace whatever the minimum
        reason = "fixes a security flaw in the web page"

    Raises :class:`FirmwareRuleError` naming the entry and the fix (not a list, an entry not a
    table, an unknown key, neither ``minimum`` nor ``flagged``, a minimum without digits, a
    flagged list that is not a list of texts, a rule matching every device of every maker).
    """
    if table is None:
        return ()
    if not isinstance(table, list):
        raise FirmwareRuleError(
            f"{where}: a list of rules, each written [[{where}]] with vendor, model, minimum "
            "and/or flagged"
        )
    rules = []
    for i, entry in enumerate(table):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise FirmwareRuleError(f"{at}: a table (vendor, model, minimum, flagged, reason)")
        unknown = set(entry) - _KEYS
        if unknown:
            raise FirmwareRuleError(f"{at}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
        vendor = _text(entry, "vendor", at, "*") or "*"
        model = _text(entry, "model", at, "*") or "*"
        minimum = _text(entry, "minimum", at, "")
        reason = _text(entry, "reason", at, "")
        flagged = entry.get("flagged", [])
        if not isinstance(flagged, list) or not all(
            isinstance(v, str) and v.strip() and len(v) <= MAX_TEXT for v in flagged
        ):
            raise FirmwareRuleError(f'{at}.flagged: a list of version texts, e.g. ["1.52"]')
        if not minimum and not flagged:
            raise FirmwareRuleError(
                f'{at}: give a minimum (e.g. minimum = "2.0") or flagged versions '
                '(e.g. flagged = ["1.52"])'
            )
        if minimum and version_key(minimum) is None:
            raise FirmwareRuleError(
                f"{at}.minimum: {minimum!r} has no number to compare with; write the version "
                'as the device gives it, e.g. "2.10.3"'
            )
        if vendor == "*" and model == "*" and minimum:
            raise FirmwareRuleError(
                f"{at}: a minimum for every device of every maker compares unrelated versions; "
                "name the vendor and/or model it is for"
            )
        rules.append(
            FirmwareRule(vendor, model, minimum, tuple(v.strip() for v in flagged), reason)
        )
    return tuple(rules)


@dataclass(frozen=True)
class Outdated:
    device_id: int
    version: str
    rule: FirmwareRule
    flagged: bool  # an exact version the MSP flagged (else: older than the minimum)


def matches(rule: FirmwareRule, device: DeviceFirmware) -> bool:
    return fnmatchcase(device.vendor.casefold(), rule.vendor.casefold()) and fnmatchcase(
        device.model.casefold(), rule.model.casefold()
    )


def check(device: DeviceFirmware, rules: Sequence[FirmwareRule]) -> Outdated | None:
    """The first rule (in the MSP's order) the device's version breaks, else None."""
    if not device.version.strip():
        return None
    for rule in rules:
        if not matches(rule, device):
            continue
        if any(same_version(device.version, v) for v in rule.flagged):
            return Outdated(device.device_id, device.version, rule, True)
        if rule.minimum and older_than(device.version, rule.minimum):
            return Outdated(device.device_id, device.version, rule, False)
    return None
