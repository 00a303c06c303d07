"""Release versions: dotted numbers ("1.4.2"), compared numerically.

Deliberately narrower than PEP 440: a fielded product has no need for epochs or local labels,
and a version the box cannot order is refused rather than guessed at.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^(0|[1-9]\d{0,5})(\.(0|[1-9]\d{0,5})){1,3}$")


class BadVersion(ValueError):
    pass


def parse_version(text: str) -> tuple[int, ...]:
    if not isinstance(text, str) or not _VERSION.match(text):
        raise BadVersion(
            f"{text!r} is not a release version; versions are 2 to 4 dotted numbers like '1.4.2'"
        )
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def is_newer(candidate: str, running: str) -> bool:
    return parse_version(candidate) > parse_version(running)
