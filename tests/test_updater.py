"""Firmware updates end to end: real wheels, real virtualenvs, a real HTTP server on loopback,
real subprocesses killed with SIGKILL at every step of the install."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import mailbox
from core.clock import BootInfo
from core.config import load_config
from firmware.updater.build import build_bundle
from firmware.updater.installer import Updater
from firmware.updater.manifest import HEADER_BYTES, Manifest, write_bundle
from tests.updater_support import (
    FileServer,
    build_wheel,
    file_server,
    pip_wheel,
    run_updater,
    updater_config,
)

OLD, RUNNING, NEW = "0.9.0", "1.0.0", "1.1.0"


@dataclass
class Kit:
    """Everything built once per session: keys, wheels, bundles, a template install root."""

    key: Ed25519PrivateKey
    other_key: Ed25519PrivateKey
    wheels: dict[str, list[Path]]
    bundles: Path
    template: Path  # a root with RUNNING installed and committed
    root: Path  # where every test's root lives (venvs hold absolute paths: the path is fixed)
    server: FileServer


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    base = tmp_path_factory.mktemp("updater")
    key, other_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    # A release's wheel set: outpost itself and the pip that installs it (no other libraries:
    # the test releases take those from the test venv through extra_site_dirs).
    wheels = {
        v: [build_wheel(v, base / "wheels" / v, base), pip_wheel()] for v in (OLD, RUNNING, NEW)
    }
    bundles = base / "bundles"
    bundles.mkdir()
    for version, wheel_set in wheels.items():
        build_bundle(
            bundles / f"outpost-{version}.bundle", version=version, wheels=wheel_set, key=key
        )
    root = base / "root"
    with file_server(bundles) as server:
        config = _write_config(root, key)
        # The first release goes in through the updater itself and is committed by its own code.
        done = run_updater(config, "install", str(bundles / f"outpost-{RUNNING}.bundle"))
        assert done.returncode == 0, done.stderr
        _confirm(root, config, RUNNING)
        assert json.loads(run_updater(config, "check").stdout)["last_result"]["outcome"] == (
            "committed"
        )
        template = base / "template"
        shutil.copytree(root, template, symlinks=True)
        yield Kit(key, other_key, wheels, bundles, template, root, server)


def _write_config(root: Path, key: Ed25519PrivateKey, window_s: float = 600.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root.parent / "outpost.toml"
    config.write_text(updater_config(root, key, window_s=window_s))
    return config


def _confirm(root: Path, config: Path, version: str) -> None:
    """The release on trial reports healthy, from its own virtualenv (as the appliance does)."""
    python = root / "releases" / version / "venv" / "bin" / "python"
    done = run_updater(config, "confirm", python=str(python))
    assert done.returncode == 0, done.stderr
    assert f"reported {version} healthy" in done.stdout


@pytest.fixture
def env(kit: Kit) -> Iterator[tuple[Kit, Path]]:
    """A fresh copy of the committed root at the fixed path, and its config file."""
    shutil.rmtree(kit.root, ignore_errors=True)
    shutil.copytree(kit.template, kit.root, symlinks=True)
    config = _write_config(kit.root, kit.key)
    yield kit, config
    shutil.rmtree(kit.root, ignore_errors=True)


def _state(config: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(run_updater(config, "status").stdout)
    return state


def _assert_runs(root: Path, version: str) -> None:
    """``current`` names a complete release whose own code imports and names itself."""
    assert os.readlink(root / "current") == f"releases/{version}"
    release = root / "current"
    assert (release / ".installed").exists()
    done = subprocess.run(
        [str(release / "venv" / "bin" / "outpost"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == f"outpost {version}", done.stderr


def _assert_untouched(root: Path) -> None:
    _assert_runs(root, RUNNING)
    assert sorted(p.name for p in (root / "releases").iterdir()) == [RUNNING]


def test_good_release_installs_commits_and_keeps_previous(env: tuple[Kit, Path]) -> None:
    kit, config = env
    done = run_updater(config, "install", kit.server.url(f"outpost-{NEW}.bundle"))
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["phase"] == "trial" and state["trial"]["from"] == RUNNING
    _assert_runs(kit.root, NEW)
    # Until it reports healthy nothing is committed, and a check changes nothing.
    assert _state(config)["phase"] == "trial"
    assert json.loads(run_updater(config, "check").stdout)["phase"] == "trial"
    _confirm(kit.root, config, NEW)
    state = json.loads(run_updater(config, "check").stdout)
    assert state["phase"] == "idle"
    assert state["last_result"]["outcome"] == "committed"
    assert state["current"] == NEW and state["previous"] == RUNNING
    _assert_runs(kit.root, NEW)
    assert sorted(p.name for p in (kit.root / "releases").iterdir()) == [RUNNING, NEW]
    assert list((kit.root / "updater" / "downloads").iterdir()) == []


def test_release_that_never_reports_healthy_is_rolled_back(env: tuple[Kit, Path]) -> None:
    kit, _ = env
    config = _write_config(kit.root, kit.key, window_s=1.0)
    done = run_updater(config, "install", kit.server.url(f"outpost-{NEW}.bundle"))
    assert json.loads(done.stdout)["phase"] == "trial", done.stderr
    _assert_runs(kit.root, NEW)
    time.sleep(1.2)
    state = json.loads(run_updater(config, "check").stdout)
    assert state["phase"] == "idle"
    assert state["last_result"]["outcome"] == "rolled_back"
    assert "did not report healthy within 1 s" in state["last_result"]["reason"]
    _assert_untouched(kit.root)


def test_health_report_of_another_version_does_not_commit(env: tuple[Kit, Path]) -> None:
    kit, _ = env
    config = _write_config(kit.root, kit.key, window_s=1.0)
    run_updater(config, "install", kit.server.url(f"outpost-{NEW}.bundle"))
    # The old release (still on disk as previous) reporting healthy is not the new one's health.
    mailbox.write_health(kit.root / "mailbox", RUNNING, BootInfo.read().boot_id)
    assert _state(config)["phase"] == "trial"
    time.sleep(1.2)
    assert json.loads(run_updater(config, "check").stdout)["last_result"]["outcome"] == (
        "rolled_back"
    )


def test_reboots_during_trial_roll_back_after_the_limit(env: tuple[Kit, Path]) -> None:
    kit, config = env
    boot = {"id": "boot-a"}  # which boot the updater believes this is
    updater = Updater(load_config(config).updates, boot=lambda: BootInfo(boot["id"], 5.0))
    updater.request(str(kit.bundles / f"outpost-{NEW}.bundle"))
    assert asyncio.run(updater.run())["phase"] == "trial"
    assert updater.check()["trial"]["boots"] == 1
    boot["id"] = "boot-b"  # power cut during the trial; the new release comes up again
    state = updater.check()
    assert state["phase"] == "trial" and state["trial"]["boots"] == 2
    assert updater.check()["trial"]["boots"] == 2  # more checks in the same boot count nothing
    boot["id"] = "boot-c"  # a third boot without a health report: over max_trial_boots = 2
    state = updater.check()
    assert state["last_result"]["outcome"] == "rolled_back"
    assert "did not report healthy in 2 boots" in state["last_result"]["reason"]
    _assert_untouched(kit.root)


def _refused(config: Path, source: str) -> dict[str, Any]:
    done = run_updater(config, "install", source)
    assert done.returncode == 3, (done.stdout, done.stderr)
    state: dict[str, Any] = json.loads(done.stdout)
    assert state["phase"] == "idle" and state["last_result"]["outcome"] == "refused"
    return state


def test_bad_signature_is_refused_before_unpacking(env: tuple[Kit, Path]) -> None:
    kit, config = env
    bundle = kit.bundles / "bad-signature.bundle"
    build_bundle(bundle, version=NEW, wheels=kit.wheels[NEW], key=kit.other_key)
    state = _refused(config, kit.server.url(bundle.name))
    assert state["last_result"]["reason"].startswith("bad signature")
    _assert_untouched(kit.root)
    assert list((kit.root / "updater" / "downloads").iterdir()) == []


def test_tampered_manifest_fails_its_signature(env: tuple[Kit, Path]) -> None:
    kit, config = env
    data = bytearray((kit.bundles / f"outpost-{NEW}.bundle").read_bytes())
    # Flip the version inside the signed manifest's base64 text.
    start = data.index(b'"manifest": "') + 13
    data[start + 5] = ord("A") if data[start + 5] != ord("A") else ord("B")
    (kit.bundles / "tampered.bundle").write_bytes(bytes(data))
    state = _refused(config, str(kit.bundles / "tampered.bundle"))
    assert state["last_result"]["reason"].startswith("bad signature")
    _assert_untouched(kit.root)


def test_wrong_payload_hash_is_refused(env: tuple[Kit, Path]) -> None:
    kit, config = env
    data = bytearray((kit.bundles / f"outpost-{NEW}.bundle").read_bytes())
    data[-100] ^= 0xFF  # one bit of the payload, after the signed manifest
    (kit.bundles / "wrong-hash.bundle").write_bytes(bytes(data))
    state = _refused(config, kit.server.url("wrong-hash.bundle"))
    assert state["last_result"]["reason"].startswith("wrong hash: payload sha256")
    _assert_untouched(kit.root)


def test_wrong_file_hash_inside_payload_is_refused(env: tuple[Kit, Path], tmp_path: Path) -> None:
    kit, config = env
    # A correctly signed manifest whose per-file hash does not match the file in the payload.
    good = kit.bundles / f"outpost-{NEW}.bundle"
    from firmware.updater.manifest import read_signed_manifest

    opened = read_signed_manifest(good, [kit.key.public_key()])
    payload = tmp_path / "payload.tar.gz"
    payload.write_bytes(good.read_bytes()[opened.payload_offset :])
    files = {name: "0" * 64 for name in opened.manifest.files}
    bad = replace(opened.manifest, files=files)
    write_bundle(kit.bundles / "wrong-file-hash.bundle", bad, payload, kit.key)
    state = _refused(config, str(kit.bundles / "wrong-file-hash.bundle"))
    assert state["last_result"]["reason"].startswith("wrong hash: wheels/outpost-1.1.0")
    _assert_untouched(kit.root)
    assert not any(p.name.startswith(".staging") for p in (kit.root / "releases").iterdir())


def test_older_and_same_versions_are_refused(env: tuple[Kit, Path]) -> None:
    kit, config = env
    state = _refused(config, kit.server.url(f"outpost-{OLD}.bundle"))
    assert state["last_result"]["reason"].startswith("downgrade refused: 0.9.0 is older")
    state = _refused(config, kit.server.url(f"outpost-{RUNNING}.bundle"))
    assert state["last_result"]["reason"] == "version 1.0.0 is already running"
    _assert_untouched(kit.root)


def test_explicitly_signed_rollback_installs_an_older_release(env: tuple[Kit, Path]) -> None:
    kit, config = env
    # A rollback signed for another running version cannot be replayed against this one.
    elsewhere = kit.bundles / "rollback-from-2.0.0.bundle"
    build_bundle(
        elsewhere, version=OLD, wheels=kit.wheels[OLD], key=kit.key, downgrade_from=("2.0.0",)
    )
    state = _refused(config, kit.server.url(elsewhere.name))
    assert state["last_result"]["reason"].startswith("downgrade refused")
    bundle = kit.bundles / "rollback.bundle"
    build_bundle(
        bundle, version=OLD, wheels=kit.wheels[OLD], key=kit.key, downgrade_from=(RUNNING,)
    )
    state = json.loads(run_updater(config, "install", kit.server.url(bundle.name)).stdout)
    assert state["phase"] == "trial"
    _assert_runs(kit.root, OLD)


def test_download_resumes_with_range_after_a_cut(env: tuple[Kit, Path]) -> None:
    kit, config = env
    name = f"outpost-{NEW}.bundle"
    kit.server.ranges.clear()
    kit.server.cut_once.add(name)
    first = run_updater(config, "install", kit.server.url(name))
    state = json.loads(first.stdout)
    assert state["phase"] == "downloading"
    assert "will resume" in state["job"]["last_error"]
    part = kit.root / "updater" / "downloads" / f"{name}.bundle.part"
    size = (kit.bundles / name).stat().st_size
    assert 0 < part.stat().st_size < size
    had = part.stat().st_size
    state = json.loads(run_updater(config, "resume").stdout)
    assert state["phase"] == "trial"
    assert kit.server.ranges == [None, f"bytes={had}-"]
    _assert_runs(kit.root, NEW)


def test_request_through_the_mailbox_is_taken_by_resume(env: tuple[Kit, Path]) -> None:
    kit, config = env
    box = kit.root / "mailbox"
    mailbox.write_request(box, kit.server.url(f"outpost-{NEW}.bundle"), NEW, "cmd-1")
    state = json.loads(run_updater(config, "resume").stdout)
    assert state["phase"] == "trial" and not (box / "request.json").exists()
    _confirm(kit.root, config, NEW)
    state = json.loads(run_updater(config, "resume").stdout)
    assert state["last_result"]["outcome"] == "committed"
    assert state["last_result"]["command_id"] == "cmd-1"


def test_request_for_a_version_other_than_the_bundle_is_refused(env: tuple[Kit, Path]) -> None:
    kit, config = env
    done = run_updater(
        config, "install", kit.server.url(f"outpost-{NEW}.bundle"), "--version", "1.2.0"
    )
    state = json.loads(done.stdout)
    assert state["last_result"]["reason"] == "bundle is version 1.1.0, the request asked for 1.2.0"
    _assert_untouched(kit.root)


KILL_STEPS = (
    "download",
    "downloaded",
    "verified",
    "unpacked_staging",
    "unpacked",
    "venv_created",
    "pip_installed",
    "installed",
    "switched",
)


@pytest.mark.parametrize("step", KILL_STEPS)
def test_kill_9_at_every_install_step_leaves_a_working_release(
    env: tuple[Kit, Path], step: str
) -> None:
    kit, config = env
    marker = kit.root / "updater" / f"paused-{step}"
    proc = subprocess.Popen(
        [*_updater_argv(config), "install", kit.server.url(f"outpost-{NEW}.bundle")],
        env={**os.environ, "OUTPOST_UPDATER_PAUSE_AT": step},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"installer exited before reaching {step}"
            assert time.monotonic() < deadline, f"installer never reached {step}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    marker.unlink()
    # Right after the power cut: the box runs the previous release, or (switched) the new one.
    expected = NEW if step == "switched" else RUNNING
    _assert_runs(kit.root, expected)
    json.loads((kit.root / "updater" / "state.json").read_text())  # never torn
    # At the next boot the updater resumes the journal and completes the update.
    state = json.loads(run_updater(config, "resume").stdout)
    assert state["phase"] == "trial", state
    _assert_runs(kit.root, NEW)
    assert not list((kit.root / "releases").glob(".staging-*"))
    _confirm(kit.root, config, NEW)
    state = json.loads(run_updater(config, "check").stdout)
    assert state["last_result"]["outcome"] == "committed"
    assert state["current"] == NEW and state["previous"] == RUNNING


def test_kill_9_during_rollback_completes_the_rollback(env: tuple[Kit, Path]) -> None:
    kit, _ = env
    config = _write_config(kit.root, kit.key, window_s=0.5)
    run_updater(config, "install", kit.server.url(f"outpost-{NEW}.bundle"))
    time.sleep(0.7)
    proc = subprocess.Popen(
        [*_updater_argv(config), "check"],
        env={**os.environ, "OUTPOST_UPDATER_PAUSE_AT": "rolled_back_link"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = kit.root / "updater" / "paused-rolled_back_link"
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert _state(config)["phase"] == "rolling_back"
    _assert_runs(kit.root, RUNNING)
    state = json.loads(run_updater(config, "resume").stdout)
    assert state["phase"] == "idle" and state["last_result"]["outcome"] == "rolled_back"
    _assert_untouched(kit.root)


def _updater_argv(config: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "firmware.updater", "--config", str(config)]


def test_manifest_rejects_unsafe_paths_and_bad_versions() -> None:
    base = Manifest(version="1.0.0", payload_sha256="0" * 64, payload_size=1, files={"a": "0"})
    from firmware.updater.manifest import BundleRefused

    for bad in (replace(base, files={"../etc/passwd": "0"}), replace(base, files={"/x": "0"})):
        with pytest.raises(BundleRefused, match="unsafe path"):
            Manifest.from_bytes(bad.to_bytes())
    with pytest.raises(BundleRefused, match="not a release version"):
        Manifest.from_bytes(replace(base, version="1.0.0-evil").to_bytes())
    assert Manifest.from_bytes(base.to_bytes()) == base
    assert HEADER_BYTES == 12
