"""Alerting's own migration chain ("alerting") over the ``alerts`` table of the core chain.

1: who acknowledged an alert and when: ``acked_by`` (a name as home reports it, e.g. "Anna
   (link via helpdesk)"; '' when nobody, or acknowledged on the box's own page) and ``acked_ts``
   (epoch s, home's time of the acknowledgement). Additive: older firmware runs on it.
"""

from __future__ import annotations

from services.store.migrations import Migration, MigrationChain, sql

ALERTING = MigrationChain(
    "alerting",
    (
        Migration(
            1,
            "who acknowledged an alert, when",
            sql(
                "ALTER TABLE alerts ADD COLUMN acked_by TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE alerts ADD COLUMN acked_ts REAL",
            ),
        ),
    ),
)
