"""Settings of the local SQLite store ([store] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import non_negative, positive, setting

MIB = 1024 * 1024


@dataclass(frozen=True)
class StoreSettings:
    path: str = setting(
        "/var/lib/outpost/outpost.db", help="path of the SQLite database, on the data partition"
    )
    # A 16 GB SD card keeps ~9 GB free after Raspberry Pi OS and two firmware releases;
    # 4 GiB for data leaves the card room and wear-levelling space.
    budget_mb: int = setting(4096, check=positive, help="disk budget of the store in MiB")
    max_age_days: int = setting(90, check=positive, help="oldest data kept, in days")
    # Group commit: writes queued while one transaction commits join the next one, up to this.
    batch_max_ops: int = setting(1000, check=positive, help="most write operations per commit")
    # Flash wear (docs/polling.md "Writes and flash wear"): a poll's result (measurements,
    # liveness state) waits up to this long for others to share its commit, instead of one
    # commit (WAL frames, an fsync, checkpoint copies) per device poll. A power cut or a kill
    # loses at most this many seconds of measurements; alert transitions, events and
    # configuration changes never wait (they commit at once, with whatever is held).
    commit_window_s: float = setting(
        5.0,
        check=non_negative,
        help="seconds a measurement may wait to be committed with others (0: at once)",
    )
