"""Numbered schema migrations, one chain per component, applied in order at start.

Each component (core, discovery, polling, uplink, ...) owns its tables and its own chain, so a
service's schema lives beside its code. Applied versions are recorded in ``schema_migrations``;
every migration runs in its own transaction, so a power cut mid-upgrade leaves the database at
the previous version, never half-migrated.

Firmware updates roll back (docs/updates.md): the previous release must then run on a database a
newer release migrated. Most migrations only add (tables, columns with defaults, indexes) and
older code runs on them unharmed; a migration that older code cannot run on (a rename, a drop,
a changed meaning) is marked ``breaking``, and only then does older firmware refuse to start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.clock import Clock, system_clock
from core.logs import get_log

log = get_log("store")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]
    # True when firmware that predates this migration cannot run on the migrated schema.
    breaking: bool = False


@dataclass(frozen=True)
class MigrationChain:
    component: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"migrations of {self.component!r} must be numbered 1..n: {versions}")


class SchemaTooNew(Exception):
    """The database was migrated by a newer firmware than the one running."""


def sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    """A migration made of plain SQL statements."""

    def apply(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return apply


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL,
    breaking INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (component, version)
)"""


def applied_versions(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT component, MAX(version) FROM schema_migrations GROUP BY component"
    ).fetchall()
    return {component: version for component, version in rows}


def migrate(
    conn: sqlite3.Connection, chains: Sequence[MigrationChain], clock: Clock | None = None
) -> list[str]:
    """Apply every pending migration; return the names applied. ``conn`` is in autocommit mode.

    ``clock`` stamps each ledger row's ``applied_at`` (wall time, s).
    """
    clock = clock or system_clock()
    conn.execute(_LEDGER)
    current = applied_versions(conn)
    done: list[str] = []
    for chain in chains:
        have = current.get(chain.component, 0)
        known = len(chain.migrations)
        if have > known:
            breaking = conn.execute(
                "SELECT version, name FROM schema_migrations"
                " WHERE component = ? AND version > ? AND breaking ORDER BY version",
                (chain.component, known),
            ).fetchall()
            if breaking:
                version, name = breaking[0]
                raise SchemaTooNew(
                    f"the database schema of {chain.component!r} is at version {have}, newer "
                    f"than this firmware knows ({known}), and migration {version} ({name}) "
                    "cannot be run on by older firmware; run the newer firmware or restore a "
                    "backup of the store"
                )
            log.warning(
                "store.newer_schema",
                component=chain.component,
                schema=have,
                known=known,
                note="additive migrations of a newer release; running on them",
            )
            continue
        for migration in chain.migrations[have:]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                migration.apply(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, applied_at,"
                    " breaking) VALUES (?, ?, ?, ?, ?)",
                    (
                        chain.component,
                        migration.version,
                        migration.name,
                        clock.wall(),
                        int(migration.breaking),
                    ),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            label = f"{chain.component}.{migration.version}:{migration.name}"
            log.info("store.migrated", migration=label)
            done.append(label)
    return done
