"""Live status keys are StatusKey members: stored as plain text, and no product code spells one
out as a string literal where it publishes or reads the status (mypy checks publish(); this
checks the readers, which take plain dicts)."""

from __future__ import annotations

import json
import re

from core.status import LiveStatus, StatusKey
from tests.conftest import REPO

PRODUCT = ("core", "services", "web", "hardware", "provisioning", "firmware")
_KEYS = "|".join(re.escape(k.value) for k in StatusKey)
_READERS = r"(?:publish\(\s*|(?:status|facts|snapshot\(\))(?:\.get\(|\[))"
LITERAL_KEY = re.compile(rf'{_READERS}"(?:{_KEYS})"')


def test_published_keys_are_plain_text_and_literal_readers_still_match() -> None:
    status = LiveStatus()
    status.publish(StatusKey.UPLINK_STATE, "connected")
    snapshot = status.snapshot()
    [key] = snapshot
    assert type(key) is str and key == "uplink.state"
    assert snapshot.get(StatusKey.UPLINK_STATE) == snapshot["uplink.state"] == "connected"
    assert json.loads(json.dumps(snapshot)) == {"uplink.state": "connected"}


def test_every_key_is_unique_and_documented() -> None:
    values = [k.value for k in StatusKey]
    assert len(set(values)) == len(values)
    source = (REPO / "core" / "status.py").read_text()
    for key in StatusKey:
        # Each member has its publisher and values in the comment just above it.
        assert re.search(rf"#: \(.+\) .+\n\s+{key.name} = ", source), key.name


def test_no_status_key_literals_where_the_status_is_read_or_published() -> None:
    pattern = LITERAL_KEY
    assert all((REPO / top).is_dir() for top in PRODUCT)
    found = [
        f"{path.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}"
        for top in PRODUCT
        for path in sorted((REPO / top).rglob("*.py"))
        for text in [path.read_text()]
        for m in pattern.finditer(text)
    ]
    assert not found, "use core.status.StatusKey members:\n" + "\n".join(found)


def test_the_check_above_finds_a_literal() -> None:
    pattern = LITERAL_KEY
    assert pattern.search('ctx.status.publish("uplink.state", 1)')
    assert pattern.search('facts.get("phase")') and pattern.search('status["fault"]')
    assert not pattern.search("facts.get(StatusKey.PHASE)")
