"""Words every layer and home share: alert severities and the inventory's device kinds."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args


class Severity(StrEnum):
    """An alert's severity: one order for the appliance, its page and home.

    On the wire, in the store and in JSON a severity is its lower-case name ("major"): a
    ``Severity`` is a ``str`` and compares equal to it. Ordering compares the rank instead of
    the text, ``Severity.MINOR < Severity.MAJOR``, also against the plain name
    (``Severity.MAJOR >= "minor"``). Parse untrusted text with :meth:`parse`.
    """

    INFO = "info"
    WARNING = "warning"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return _RANK[self]

    @classmethod
    def parse(cls, text: object, default: Severity | None = None) -> Severity:
        """The severity named by ``text``; ``default`` (or ValueError) for anything else."""
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            if default is None:
                raise ValueError(
                    f"unknown severity {text!r}; use one of {', '.join(cls)}"
                ) from None
            return default

    @classmethod
    def worst_first(cls) -> tuple[Severity, ...]:
        """Every severity, critical first: the order of lists, counts and metrics."""
        return tuple(sorted(cls, key=lambda s: -s.rank))

    def _other_rank(self, other: object) -> int | None:
        if isinstance(other, Severity):
            return other.rank
        if isinstance(other, str):
            if other not in _RANK:  # never fall back to comparing the text
                raise ValueError(f"cannot order {other!r} against a severity; parse it first")
            return _RANK[other]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return self.rank < rank

    def __le__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return self.rank <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return self.rank > rank

    def __ge__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return self.rank >= rank

    # StrEnum members hash and compare equal as their text (the wire format stays a string).
    __hash__ = str.__hash__
    __eq__ = str.__eq__


_RANK: Final[dict[str, int]] = {s.value: i for i, s in enumerate(Severity)}
# Alert severities that count as open problems on the panel and in the live status (not info).
COUNTED_SEVERITIES: Final[tuple[Severity, ...]] = tuple(
    s for s in Severity.worst_first() if s is not Severity.INFO
)


def severity_rank_sql(column: str) -> str:
    """An SQL expression ranking ``column`` worst first: critical 0 ... warning 3, else 4.

    Info and any unknown text share the last rank, so the result always indexes
    ``Severity.worst_first()``. ``column`` is a column name from the caller's own query, never
    user input.
    """
    *ranked, _info = Severity.worst_first()
    whens = " ".join(f"WHEN '{s.value}' THEN {i}" for i, s in enumerate(ranked))
    return f"CASE {column} {whens} ELSE {len(ranked)} END"


# The inventory's vocabulary of device kinds: discovery classifies into these, the config and
# the status page use them. "ap" is a wireless access point, "media" a TV or streaming box.
DeviceKind = Literal[
    "router", "switch", "ap", "nas", "printer", "ups", "server", "workstation", "phone",
    "camera", "media", "iot", "unknown",
]  # fmt: skip
DEVICE_KINDS: Final[tuple[DeviceKind, ...]] = get_args(DeviceKind)
