"""The local SQLite store: inventory, measurements, events, alerts and the uplink outbox."""

from services.store.db import Store, StoreClosed, StoreError, StoreFull, Tx
from services.store.migrations import Migration, MigrationChain, sql
from services.store.records import Event, Measurement, insert_event, insert_measurements

__all__ = [
    "Event",
    "Measurement",
    "Migration",
    "MigrationChain",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreFull",
    "Tx",
    "insert_event",
    "insert_measurements",
    "sql",
]
