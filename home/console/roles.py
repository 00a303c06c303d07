"""The console's three roles and what each may do.

read-only: every page and API answer. technician: also acknowledge, note, silence, run remote
commands (not an update). admin: also users, API tokens, claims and releases, configurations,
updates. Each route declares the role it needs (guard.needs); the guard refuses a route that
declares none.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READ_ONLY = "read-only"
    TECHNICIAN = "technician"
    ADMIN = "admin"


_RANK = {Role.READ_ONLY: 0, Role.TECHNICIAN: 1, Role.ADMIN: 2}
ROLE_NAMES = tuple(r.value for r in Role)


def parse_role(text: str) -> Role:
    """The Role named ``text``; ValueError naming the choices."""
    try:
        return Role(text)
    except ValueError:
        raise ValueError(f"unknown role {text!r}; choose one of {', '.join(ROLE_NAMES)}") from None


def allows(held: Role, needed: Role) -> bool:
    """Whether a user holding ``held`` may do what needs ``needed``."""
    return _RANK[held] >= _RANK[needed]
