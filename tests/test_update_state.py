"""The update journal's one reader (core/update_state.py) against what the updater writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import fsops
from core.settings.updates import UpdateSettings
from core.update_state import UpdateJournal, journal_path, read_update_journal
from firmware.updater.installer import Updater


def test_missing_journal_is_idle(tmp_path: Path) -> None:
    journal = read_update_journal(tmp_path)
    assert journal == UpdateJournal() and journal.phase == "idle" and not journal.problem


def test_trial_and_last_result_are_read(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "phase": "trial",
        "job": None,
        "trial": {"version": "1.2.0", "boots": 1},
        "last_result": {"version": "1.1.0", "outcome": "committed", "reason": ""},
        "history": [],
    }
    journal_path(tmp_path).parent.mkdir(parents=True)
    fsops.write_json_atomic(journal_path(tmp_path), doc)
    journal = read_update_journal(tmp_path)
    assert journal.phase == "trial" and journal.trial_version == "1.2.0"
    assert dict(journal.last_result or {}) == doc["last_result"]
    assert dict(journal.document) == doc
    with pytest.raises(AttributeError):
        journal.phase = "idle"  # type: ignore[misc]


def test_damaged_journal_is_idle_and_says_why(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"phase": "tri')  # torn by hand (the updater's writes are atomic)
    journal = read_update_journal(tmp_path)
    assert journal.phase == "idle" and journal.trial_version is None
    assert str(path) in journal.problem
    path.write_text(json.dumps(["not", "an", "object"]))
    assert read_update_journal(tmp_path).problem == "the journal is not a JSON object"


def test_reads_what_the_installer_writes(tmp_path: Path) -> None:
    settings = UpdateSettings(root=str(tmp_path), mailbox_dir=str(tmp_path / "mailbox"))
    installer = Updater(settings)
    assert installer.state_path == journal_path(tmp_path)
    installer.ensure_dirs()
    installer.request("https://home.example/bundle", version="2.0.0", command_id="cmd-7")
    journal = read_update_journal(tmp_path)
    assert journal.phase == "downloading" and journal.trial_version is None
    assert journal.document["job"]["command_id"] == "cmd-7"
