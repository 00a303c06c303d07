"""The monthly report mail's once-row (migration 10 of home/migrations.py).

``report_sends``: one row per (appliance, month "YYYY-MM"); the instance that inserts it sends
the mail, so a site gets its report once per month across restarts and several home
instances. ``state``: sending (claimed at ``claimed_at``) -> sent (``sent_at``) or failed
(``error``, retried after the lease). A claim older than the lease whose instance died before
marking it is taken over: the mail may then go twice (crash between the SMTP server's
acceptance and the mark), never zero times.
"""

from __future__ import annotations

REPORT_SENDS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS report_sends (
        appliance TEXT NOT NULL,
        month TEXT NOT NULL,
        state TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        sent_at REAL,
        recipients TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (appliance, month)
    )""",
)
