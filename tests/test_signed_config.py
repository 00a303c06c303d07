"""Signed site configuration on the box: every refusal with its reason, trial, confirm, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.clock import BootInfo
from core.wire import signing
from provisioning.signed_config import KIND, ConfigKeeper

ME = "op-aaaaaaaaaaaaaaaaaaaa"
BASE: dict[str, Any] = {"store": {"path": "/var/lib/outpost/outpost.db"}, "site": {"name": ""}}


def _doc(version: int, config: dict[str, Any], appliance: str = ME) -> dict[str, Any]:
    return {
        "kind": KIND,
        "appliance": appliance,
        "site": "Dentist",
        "version": version,
        "config": config,
    }


class Boot:
    def __init__(self) -> None:
        self.id, self.t = "b1", 100.0

    def __call__(self) -> BootInfo:
        return BootInfo(self.id, self.t)


def _keeper(tmp_path: Path) -> tuple[ConfigKeeper, Boot]:
    boot = Boot()
    return ConfigKeeper(tmp_path, window_s=600.0, boot=boot), boot


MSP = Ed25519PrivateKey.generate()
GOOD = {"site": {"name": "Dentist"}, "polling": {"interval_s": 60.0}}


def test_good_config_is_applied_then_confirmed(tmp_path: Path) -> None:
    keeper, _ = _keeper(tmp_path)
    report, changed = keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    assert report["outcome"] == "applied" and report["version"] == 1
    assert changed == ["polling", "site"]
    assert keeper.applied_version() == 1
    assert keeper.load()["trial"]["version"] == 1
    confirmed = keeper.confirm()
    assert confirmed is not None and confirmed["outcome"] == "confirmed"
    state = keeper.load()
    assert state["last_good"]["version"] == 1 and state["trial"] is None
    # The same content again under a newer version changes nothing that runs.
    report, changed = keeper.offer(signing.sign(MSP, _doc(2, GOOD)), MSP.public_key(), ME, BASE)
    assert report["reason"] == "changed: nothing" and changed == []


def _refusal(tmp_path: Path, envelope: Any) -> str:
    keeper, _ = _keeper(tmp_path)
    keeper.offer(signing.sign(MSP, _doc(5, GOOD)), MSP.public_key(), ME, BASE)
    keeper.confirm()
    before = keeper.load()["applied"]
    report, changed = keeper.offer(envelope, MSP.public_key(), ME, BASE)
    assert report["outcome"] == "refused" and changed == []
    assert keeper.load()["applied"] == before  # the running configuration is untouched
    assert keeper.take_reports()[-1] == report  # and the reason waits to be sent home
    return str(report["reason"])


def test_bad_signature_is_refused(tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate()
    reason = _refusal(tmp_path, signing.sign(other, _doc(6, GOOD)))
    assert reason.startswith("outpost.site-config: bad signature")


def test_tampered_document_is_refused(tmp_path: Path) -> None:
    envelope = signing.sign(MSP, _doc(6, GOOD))
    forged = signing.sign(MSP, _doc(6, {"site": {"name": "Evil"}}))
    envelope["doc"] = forged["doc"]  # the content of one, the signature of another
    envelope["sig"] = signing.sign(MSP, _doc(7, GOOD))["sig"]
    assert "bad signature" in _refusal(tmp_path, envelope)


def test_config_for_another_appliance_is_refused(tmp_path: Path) -> None:
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(6, GOOD, appliance="op-other")))
    assert reason == f"configuration is for appliance 'op-other', this is {ME}"


def test_older_or_same_version_is_refused(tmp_path: Path) -> None:
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(5, GOOD)))
    assert reason == "configuration version 5 is not newer than the applied version 5"
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(3, GOOD)))
    assert reason == "configuration version 3 is not newer than the applied version 5"


def test_invalid_value_is_refused_with_the_key_named(tmp_path: Path) -> None:
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(6, {"polling": {"interval_s": -5}})))
    assert reason.startswith("configuration 6 is invalid: polling.interval_s")
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(6, {"polling": {"intervl_s": 5}})))
    assert "unknown key; did you mean 'interval_s'" in reason


def test_local_sections_cannot_be_set_remotely(tmp_path: Path) -> None:
    reason = _refusal(tmp_path, signing.sign(MSP, _doc(6, {"store": {"path": "/tmp/x.db"}})))
    assert reason == "configuration 6 sets sections that stay local to the box: store"


def test_unreachable_home_rolls_back_after_the_window(tmp_path: Path) -> None:
    keeper, boot = _keeper(tmp_path)
    keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    keeper.confirm()
    cut = {**GOOD, "uplink": {"url": "https://198.19.0.99:8443"}}  # home is not there
    report, changed = keeper.offer(signing.sign(MSP, _doc(2, cut)), MSP.public_key(), ME, BASE)
    assert report["outcome"] == "applied" and changed == ["uplink"]
    boot.t += 599.0
    assert keeper.check() is None  # still inside the window
    boot.t += 2.0
    result = keeper.check()
    assert result is not None
    report, changed = result
    assert report["outcome"] == "rolled_back"
    assert report["reason"] == "home was not reachable within 600 s; back to version 1"
    assert changed == ["uplink"]
    assert keeper.applied_version() == 1 and keeper.applied_table() == GOOD
    # Offered again (a home that resends it), it is refused: the box must not flap.
    report, changed = keeper.offer(signing.sign(MSP, _doc(2, cut)), MSP.public_key(), ME, BASE)
    assert report["outcome"] == "refused" and changed == []
    assert report["reason"] == (
        "configuration version 2 was rolled back on this box; fix it and push it as a newer version"
    )
    assert keeper.applied_version() == 1 and keeper.load()["trial"] is None
    # A newer version with the fix is taken.
    report, _ = keeper.offer(signing.sign(MSP, _doc(3, GOOD)), MSP.public_key(), ME, BASE)
    assert report["outcome"] == "applied"


def test_reboot_during_the_trial_rolls_back(tmp_path: Path) -> None:
    keeper, boot = _keeper(tmp_path)
    keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    boot.id = "b2"
    result = keeper.check()
    assert result is not None and result[0]["outcome"] == "rolled_back"
    assert keeper.applied_version() == 0 and keeper.applied_table() == {}
    # The MSP can send the same version again: it is newer than what is applied (nothing).
    report, _ = keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    assert report["outcome"] == "applied"


def test_reports_are_kept_until_home_takes_them(tmp_path: Path) -> None:
    keeper, _ = _keeper(tmp_path)
    keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    keeper.offer(signing.sign(MSP, _doc(1, GOOD)), MSP.public_key(), ME, BASE)
    assert [r["outcome"] for r in keeper.take_reports()] == ["applied", "refused"]
    keeper.drop_reports(1)
    assert [r["outcome"] for r in keeper.take_reports()] == ["refused"]
