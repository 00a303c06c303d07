"""Severity: one order everywhere, the same strings on the wire."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core.vocabulary import COUNTED_SEVERITIES, Severity, severity_rank_sql

# Written down from docs (least to worst), not read from the enum under test.
SPEC_ORDER = ("info", "warning", "minor", "major", "critical")


def test_the_order_is_by_rank_not_by_text() -> None:
    ordered = sorted(Severity.parse(s) for s in reversed(SPEC_ORDER))
    assert [str(s) for s in ordered] == list(SPEC_ORDER)
    assert Severity.MINOR < Severity.MAJOR  # as text, "minor" > "major"
    assert Severity.CRITICAL > "warning" and Severity.MAJOR > "minor"
    assert max(Severity.WARNING, Severity.CRITICAL, Severity.MINOR) is Severity.CRITICAL
    assert [s.rank for s in (Severity.parse("info"), Severity.CRITICAL)] == [0, 4]
    assert [str(s) for s in Severity.worst_first()] == list(reversed(SPEC_ORDER))
    assert [str(s) for s in COUNTED_SEVERITIES] == ["critical", "major", "minor", "warning"]


def test_unknown_text_is_refused_not_compared_as_text() -> None:
    with pytest.raises(ValueError, match="cannot order 'urgent'"):
        _ = Severity.MAJOR < "urgent"
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        Severity.parse("urgent")
    assert Severity.parse("urgent", Severity.WARNING) is Severity.WARNING
    assert Severity.parse(" MAJOR ") is Severity.MAJOR


def test_the_wire_store_and_json_see_plain_strings() -> None:
    counts: dict[str, int] = {Severity.MAJOR: 1}  # keyed by the enum, read by the text
    assert Severity.MAJOR == "major" and counts["major"] == 1
    assert json.dumps({"severity": Severity.CRITICAL}) == '{"severity": "critical"}'
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE alerts (severity TEXT)")
    conn.executemany("INSERT INTO alerts VALUES (?)", [(s,) for s in Severity] + [("odd",)])
    assert conn.execute("SELECT typeof(severity) FROM alerts LIMIT 1").fetchone() == ("text",)
    # The SQL rank agrees with worst_first(); info and unknown text share the last rank.
    rows = conn.execute(
        f"SELECT severity, {severity_rank_sql('severity')} AS r FROM alerts ORDER BY r, severity"
    ).fetchall()
    assert [s for s, _ in rows] == ["critical", "major", "minor", "warning", "info", "odd"]
    assert rows[-1][1] == rows[-2][1] == 4
