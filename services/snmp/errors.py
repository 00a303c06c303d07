"""Errors of the SNMP client. None of them ever carries a community or a key.

Every error is an :class:`SnmpError`, so a poller can catch one class and move on to the next
device; the subclasses say what went wrong in a way a technician can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.snmp.values import Varbind

# RFC 3416 error-status names, by number (index = value of the error-status field).
ERROR_STATUS_NAMES = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)


def error_status_name(status: int) -> str:
    if 0 <= status < len(ERROR_STATUS_NAMES):
        return ERROR_STATUS_NAMES[status]
    return f"unknown({status})"


class SnmpError(Exception):
    """Base of every error raised by services.snmp."""


class SnmpTimeout(SnmpError):
    """No valid answer from ``host`` within the timeout, after every retry (or a walk deadline)."""

    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        self.detail = detail
        text = f"no answer from {host}"
        super().__init__(f"{text}: {detail}" if detail else text)


class SnmpDecodeError(SnmpError):
    """A datagram that is not a well-formed SNMP message (truncated, garbage, hostile).

    ``offset`` is the byte position where decoding failed, when known.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"undecodable SNMP message{where}: {reason}")


class SnmpErrorStatus(SnmpError):
    """The agent answered with errorStatus != 0 (``status`` is its RFC 3416 name).

    ``index`` is the 1-based errorIndex (0 when the agent did not name a varbind) and ``oid``
    the OID it points at, when it points at one of ours.
    """

    def __init__(self, status: str, index: int, oid: tuple[int, ...] | None = None) -> None:
        self.status = status
        self.index = index
        self.oid = oid
        where = f" (varbind {index}" + (f", {'.'.join(map(str, oid))})" if oid else ")")
        super().__init__(f"agent answered {status}" + (where if index else ""))


class SnmpWalkLoop(SnmpError):
    """The agent answered a walk with an OID not after the one asked for: it would loop forever."""

    def __init__(self, host: str, asked: tuple[int, ...], got: tuple[int, ...]) -> None:
        self.host = host
        self.asked = asked
        self.got = got
        super().__init__(
            f"{host} went backwards in a walk: asked after {'.'.join(map(str, asked))}, "
            f"got {'.'.join(map(str, got))}"
        )


class SnmpWalkTimeout(SnmpTimeout):
    """A walk stopped half-way: the agent stopped answering, or the walk's deadline passed.

    The varbinds fetched so far are in ``partial``: a caller that can live with a truncated
    table may use them, one that cannot treats the device as failed.
    """

    def __init__(self, host: str, detail: str, partial: Sequence[Varbind]) -> None:
        self.partial = tuple(partial)
        super().__init__(host, f"{detail} (walk stopped after {len(self.partial)} varbinds)")


class SnmpV3Error(SnmpError):
    """An SNMPv3 failure reported by the USM: unknown user, wrong digest, decryption error..."""
