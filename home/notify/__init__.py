"""Home's notifications: alerts reach a person (docs/notifications.md).

config (TOML ``[notify]``) -> routing + hours (who, when) -> planner (outbox rows written in the
ingest transaction) -> worker (sends with retries, delivery log) -> channels (SMTP, webhook,
Apprise); ack (signed acknowledgement links) stops escalation.
"""
