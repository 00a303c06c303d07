"""Home's database schema as an ordered list of numbered migrations.

Each migration is ``(number, statements)``; :func:`migrate` runs, in one transaction each, the
migrations whose number is above the highest one recorded in ``schema_version``. The SQL is kept
portable (SQLite today, PostgreSQL next): ``TEXT``/``INTEGER``/``REAL`` columns, no
``AUTOINCREMENT``, no ``WITHOUT ROWID``, ``CREATE ... IF NOT EXISTS`` so migration 1 can also be
applied to a database made before migrations existed (its tables already exist). Never edit a
migration that has shipped: append a new number.

``REAL`` is SQLite's float; on PostgreSQL it is 4-byte, so the PostgreSQL runner must map it to
``DOUBLE PRECISION`` (epoch seconds need the precision). That is the only mapping needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.clock import Clock, system_clock
from home.inventory import FIRMWARE_SCHEMA, INVENTORY_SCHEMA
from home.notify.stored import SCHEMA as NOTIFY_SETTINGS_SCHEMA
from home.report.schema import REPORT_SENDS_SCHEMA
from home.sql import Connection, Dialect, ddl


@dataclass(frozen=True)
class Only:
    """A migration statement for one back end only (``sql`` in that dialect)."""

    dialect: Dialect
    sql: str


Migration = tuple[int, Sequence[str | Only]]

# 1: appliances, per-stream high-water marks, records, nonces, latest alert state (home/db.py).
BASE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS appliances (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL DEFAULT '',
        public_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'registered',
        registered_at REAL NOT NULL,
        last_seen REAL,
        heartbeat_at REAL,
        heartbeat TEXT NOT NULL DEFAULT '{}',
        drops TEXT NOT NULL DEFAULT '{}',
        records INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS streams (
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        lane INTEGER NOT NULL,
        hwm INTEGER NOT NULL,
        PRIMARY KEY (appliance, stream, lane)
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        lane INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ts REAL NOT NULL,
        synced INTEGER NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (appliance, stream, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS nonces (
        appliance TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (appliance, nonce)
    )""",
    "CREATE INDEX IF NOT EXISTS nonces_seen ON nonces (seen_at)",
    """CREATE TABLE IF NOT EXISTS alerts (
        appliance TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        severity TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        ts REAL NOT NULL,
        PRIMARY KEY (appliance, key)
    )""",
)


# 2: notifications (home/notify): alert threads, the notification outbox, the delivery log.
NOTIFY_SCHEMA = (
    # One row per alert as the MSP sees it (a "ticket"): ``ref`` is the stable id in subjects.
    """CREATE TABLE IF NOT EXISTS notify_threads (
        ref TEXT PRIMARY KEY,
        appliance TEXT NOT NULL,
        alert_key TEXT NOT NULL,
        box_id TEXT NOT NULL DEFAULT '',
        site TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL,
        rule TEXT NOT NULL DEFAULT '',
        device_kind TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        opened_at REAL NOT NULL,
        resolved_at REAL,
        acked_by TEXT NOT NULL DEFAULT '',
        acked_at REAL,
        flaps INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS notify_threads_alert ON notify_threads (appliance, alert_key)",
    # The outbox: one row per (transition, channel). ``id`` is also the idempotency key the
    # receivers see (webhook header, SMTP Message-ID), so a resend after a crash is recognisable.
    """CREATE TABLE IF NOT EXISTS notifications (
        id TEXT PRIMARY KEY,
        ref TEXT NOT NULL,
        site TEXT NOT NULL DEFAULT '',
        channel TEXT NOT NULL,
        event TEXT NOT NULL,
        severity TEXT NOT NULL DEFAULT '',
        held INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        due_at REAL NOT NULL,
        next_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        attempt_id TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL DEFAULT '',
        sent_at REAL,
        last_error TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, next_at)",
    "CREATE INDEX IF NOT EXISTS notifications_ref ON notifications (ref)",
    # Every attempt: which message, which channel, when, how long, what happened.
    """CREATE TABLE IF NOT EXISTS notify_deliveries (
        attempt_id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        notifications TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        result TEXT NOT NULL DEFAULT 'sending',
        error TEXT NOT NULL DEFAULT '',
        latency_ms REAL
    )""",
)

# 3: claiming (home/claims.py), signed site configurations and remote commands (home/remote.py);
# made lazily by those modules before migrations existed, hence IF NOT EXISTS.
CLAIMS_COMMANDS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS claims (
        appliance TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        code_expires_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        site TEXT NOT NULL DEFAULT '',
        msp_key TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL DEFAULT '',
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        claimed_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS claims_code ON claims (code_hash)",
    """CREATE TABLE IF NOT EXISTS site_configs (
        appliance TEXT NOT NULL,
        version INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (appliance, version)
    )""",
    """CREATE TABLE IF NOT EXISTS config_reports (
        appliance TEXT NOT NULL,
        version INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (appliance, version, outcome, at)
    )""",
    """CREATE TABLE IF NOT EXISTS commands (
        id TEXT PRIMARY KEY,
        appliance TEXT NOT NULL,
        action TEXT NOT NULL,
        envelope TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        result TEXT NOT NULL DEFAULT '',
        result_at REAL,
        replays INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS diagnostics (
        id INTEGER PRIMARY KEY,
        appliance TEXT NOT NULL,
        command_id TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL
    )""",
)


# 4: leases of the jobs that run on one home instance at a time (home/leader.py).
LEASES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL,
        taken_at REAL NOT NULL
    )""",
)


# 5: the MSP console (home/console): users, sessions, API tokens, the audit log, and the
# console's own state of an alert (acknowledged, note, silenced) beside the box's.
CONSOLE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS console_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        csrf TEXT NOT NULL,
        client TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS console_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_name TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS console_audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        user_name TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        client TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT 'ok'
    )""",
    "CREATE INDEX IF NOT EXISTS console_audit_at ON console_audit (at)",
    """CREATE TABLE IF NOT EXISTS console_alert_state (
        appliance TEXT NOT NULL,
        key TEXT NOT NULL,
        opened_ts REAL,
        acked_by TEXT NOT NULL DEFAULT '',
        acked_at REAL,
        note TEXT NOT NULL DEFAULT '',
        note_by TEXT NOT NULL DEFAULT '',
        note_at REAL,
        silenced_until REAL,
        silenced_by TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (appliance, key)
    )""",
    """CREATE TABLE IF NOT EXISTS console_setup (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
)


# 6: maintenance windows (silences) for notifications (home/notify/silences.py).
SILENCES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS notify_silences (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL DEFAULT '',
        device TEXT NOT NULL DEFAULT '',
        key_pattern TEXT NOT NULL DEFAULT '*',
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS notify_silences_end ON notify_silences (ends_at)",
    "ALTER TABLE notify_threads ADD COLUMN silenced_by TEXT NOT NULL DEFAULT ''",
)

# 7: data that grows (home/retention.py): ``records`` partitioned by month of ``ts`` on
# PostgreSQL (unique key and primary key then carry ``ts``: a resent record has the same ts, so
# duplicates are still refused by constraint), hourly roll-ups, the console's lookup index.
RETENTION_SCHEMA: tuple[str | Only, ...] = (
    Only("postgresql", "ALTER TABLE records RENAME TO records_unpartitioned"),
    Only(
        "postgresql",
        """CREATE TABLE records (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY,
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        lane BIGINT NOT NULL,
        kind TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        synced BIGINT NOT NULL,
        body TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        CONSTRAINT records_by_month_pkey PRIMARY KEY (id, ts),
        CONSTRAINT records_by_month_once UNIQUE (appliance, stream, seq, ts)
    ) PARTITION BY RANGE (ts)""",
    ),
    Only("postgresql", "CREATE TABLE records_default PARTITION OF records DEFAULT"),
    Only(
        "postgresql",
        "INSERT INTO records (id, appliance, stream, seq, lane, kind, ts, synced, body,"
        " received_at) SELECT id, appliance, stream, seq, lane, kind, ts, synced, body,"
        " received_at FROM records_unpartitioned",
    ),
    Only(
        "postgresql",
        "SELECT setval(pg_get_serial_sequence('records', 'id'),"
        " COALESCE((SELECT MAX(id) FROM records), 0) + 1, false)",
    ),
    Only("postgresql", "DROP TABLE records_unpartitioned"),
    "CREATE INDEX IF NOT EXISTS records_by_appliance ON records (appliance, kind, ts)",
    """CREATE TABLE IF NOT EXISTS rollups_hourly (
        appliance TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        metric TEXT NOT NULL,
        instance TEXT NOT NULL,
        hour REAL NOT NULL,
        n INTEGER NOT NULL,
        vmin REAL,
        vmax REAL,
        vsum REAL,
        PRIMARY KEY (appliance, device_id, metric, instance, hour)
    )""",
)


# 14: the console's reads stay small at 500 sites (docs/home-deploy.md, "Indexes"):
# * one device's measurements of the last day (the device page's charts): the device id in the
#   record's body is indexed, only for measurements; the expression is MEASUREMENT_DEVICE, which
#   home/console/devices.py queries verbatim (a planner uses an expression index only for the
#   same expression). PostgreSQL finds the id in the body's text (ingest stores it compact,
#   ``"device_id":7``; a string value cannot hold that text unescaped) rather than parsing the
#   JSON: ``json`` and ``jsonb`` both refuse the escape \u0000 that a box's text may carry, and
#   an index expression that fails would fail the ingest of the batch;
# * the open alerts of the fleet or of a box (the overview, a site), without the resolved ones;
# * the open threads acknowledged through home/notify (every overview and site page);
# * a box's commands (its site page; the commands a sync hands the box).
MEASUREMENT_DEVICE: dict[Dialect, str] = {
    "sqlite": "json_extract(body, '$.device_id')",
    "postgresql": "(substring(body from '\"device_id\":([0-9]+)'))",
}
CONSOLE_INDEXES: tuple[str | Only, ...] = (
    *(
        Only(
            dialect,
            f"CREATE INDEX IF NOT EXISTS records_measurement_device ON records"
            f" (appliance, {expression}, ts) WHERE kind = 'measurement'",
        )
        for dialect, expression in MEASUREMENT_DEVICE.items()
    ),
    "CREATE INDEX IF NOT EXISTS alerts_open ON alerts (appliance) WHERE state = 'open'",
    "CREATE INDEX IF NOT EXISTS notify_threads_open_acked ON notify_threads (appliance,"
    " alert_key) WHERE state = 'open' AND acked_by <> ''",
    "CREATE INDEX IF NOT EXISTS commands_appliance ON commands (appliance, created_at)",
)


MIGRATIONS: tuple[Migration, ...] = (
    (1, BASE_SCHEMA),
    (2, NOTIFY_SCHEMA),
    (3, CLAIMS_COMMANDS_SCHEMA),
    (4, LEASES_SCHEMA),
    (5, CONSOLE_SCHEMA),
    (6, SILENCES_SCHEMA),
    (7, RETENTION_SCHEMA),
    # 8: each site's device inventory from the boxes' device records (home/inventory.py).
    (8, INVENTORY_SCHEMA),
    # 9: the console's alert assignment (home/console/actions.py: assign).
    (9, ("ALTER TABLE console_alert_state ADD COLUMN assigned_to TEXT NOT NULL DEFAULT ''",)),
    # 10: the monthly report mail, once per site and month (home/report/schema.py).
    (10, REPORT_SENDS_SCHEMA),
    # 11: the console's optional TOTP second factor (home/console/totp.py): the secret and the
    # last time step used (a code is accepted once).
    (
        11,
        (
            "ALTER TABLE console_users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE console_users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    # 12: notifications' periodic reads stay small on a long history (home/notify): the open
    # threads of an ended maintenance window (worker, every round) and the acknowledgements
    # carried to each box in its sync answers (home/notify/acks.py).
    (
        12,
        (
            "CREATE INDEX IF NOT EXISTS notify_threads_silenced ON notify_threads (silenced_by)"
            " WHERE state = 'open' AND silenced_by <> ''",
            "CREATE INDEX IF NOT EXISTS notify_threads_acked ON notify_threads"
            " (appliance, acked_at) WHERE acked_by <> ''",
        ),
    ),
    # 13: notification settings edited in the console, one row per saved version of the
    # [notify] document (home/notify/stored.py); the newest one is in force on every instance.
    (13, NOTIFY_SETTINGS_SCHEMA),
    (14, CONSOLE_INDEXES),
    # 15: each device's firmware version and SNMP maker (home/inventory.py), for the console's
    # device page and the monthly report's firmware check; every box is asked for a snapshot.
    (15, FIRMWARE_SCHEMA),
)

MIGRATION_LOCK = "home-migrations"
VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)"""


def current_version(conn: Connection) -> int:
    """The highest migration applied (0 for a new database)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.lock(MIGRATION_LOCK)
        conn.execute(ddl(VERSION_TABLE, conn.dialect))
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(row[0] or 0)


def migrate(
    conn: Connection, migrations: Sequence[Migration] = MIGRATIONS, clock: Clock | None = None
) -> int:
    """Apply the missing migrations in order, each in its own transaction; return the version.

    ``conn`` must be in autocommit mode (transactions explicit), as home's connections are.
    Several home instances may start at once on one PostgreSQL: each migration runs under an
    advisory lock and re-reads the version inside it, so exactly one instance applies it.
    """
    numbers = [number for number, _ in migrations]
    if numbers != sorted(set(numbers)):
        raise ValueError(f"migrations must have strictly increasing numbers, got {numbers}")
    version = current_version(conn)
    for number, statements in migrations:
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.lock(MIGRATION_LOCK)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if int(row[0] or 0) < number:
                for statement in statements:
                    if isinstance(statement, Only):
                        if statement.dialect == conn.dialect:
                            conn.execute(statement.sql)
                        continue
                    conn.execute(ddl(statement, conn.dialect))
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (number, (clock or system_clock()).wall()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version
