"""The update journal, read: what the updater last wrote about the update in progress.

The updater (firmware/updater/installer.py, a separate process running as root) writes the
journal atomically to ``<updates.root>/updater/state.json`` at every phase; the appliance
process only reads it, in one place: here. Readers: the updater service (``update.state`` for
the page and LEDs, and whether the running release is the one on trial), provisioning's sync
(``last_result`` goes home) and the diagnostics bundle (the whole document).

The document (written by ``Installer._save``)::

    {"phase": "idle" | "downloading" | "verifying" | "unpacking" | "building" | "switching"
              | "trial" | "rolling_back",
     "job": {"url", "version", "command_id", "attempts", ...} | null,
     "trial": {"version", "boots", ...} | null,
     "last_result": {"version", "outcome", "reason", "command_id", "at"} | absent,
     "history": [last_result, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

JOURNAL_DIR: Final = "updater"  # under updates.root, beside the releases
JOURNAL_FILE: Final = "state.json"

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def journal_path(updates_root: str | Path) -> Path:
    """``<updates.root>/updater/state.json``: the one place the journal lives."""
    return Path(updates_root) / JOURNAL_DIR / JOURNAL_FILE


@dataclass(frozen=True)
class UpdateJournal:
    """The journal as the appliance sees it; ``phase`` is "idle" when there is none.

    ``document`` is the journal as written (empty when absent or unreadable), for the
    diagnostics bundle; the typed fields are what the appliance decides on.
    """

    phase: str = "idle"
    trial_version: str | None = None  # the release on trial, in phase "trial"
    last_result: Mapping[str, Any] | None = None  # the last update's outcome, sent home
    document: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    problem: str = ""  # why the journal could not be read, when it could not

    @classmethod
    def from_document(cls, doc: Any) -> UpdateJournal:
        if not isinstance(doc, dict):
            return cls(problem="" if doc is None else "the journal is not a JSON object")
        trial = doc.get("trial")
        version = trial.get("version") if isinstance(trial, dict) else None
        last = doc.get("last_result")
        phase = doc.get("phase")
        return cls(
            phase=phase if isinstance(phase, str) and phase else "idle",
            trial_version=version if isinstance(version, str) else None,
            last_result=MappingProxyType(dict(last)) if isinstance(last, dict) else None,
            document=MappingProxyType(dict(doc)),
        )


def read_update_journal(updates_root: str | Path) -> UpdateJournal:
    """The journal under ``updates_root``; never raises: a missing journal is "idle", and an
    unreadable one (a disk error, a damaged file) is "idle" with ``problem`` saying why."""
    path = journal_path(updates_root)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return UpdateJournal()
    except (OSError, ValueError) as exc:
        return UpdateJournal(problem=f"cannot read the update journal {path}: {exc}")
    return UpdateJournal.from_document(doc)
