"""The install script into a staging root (DESTDIR): files, modes, links, units, idempotence."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from core.config import load_config
from simsite.harness.paths import REPO
from tests.updater_support import build_wheel

INSTALL = REPO / "firmware" / "system" / "install.sh"
UNITS = (
    "outpost.service",
    "outpost-updater.service",
    "outpost-updater.path",
    "outpost-updater.timer",
    "outpost-home.service",
)


@pytest.fixture(scope="module")
def wheelhouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("install-wheels")
    return {v: build_wheel(v, base / v, base).parent for v in ("1.0.0", "1.1.0")}


def _install(destdir: Path, wheels: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DESTDIR": str(destdir),
        "PYTHON": sys.executable,
        # The test wheel set is outpost alone; its libraries come from the test venv.
        "EXTRA_SITE_DIRS": sysconfig.get_paths()["purelib"],
    }
    done = subprocess.run(
        ["sh", str(INSTALL), "--wheels", str(wheels)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_into_a_staging_root(tmp_path: Path, wheelhouses: dict[str, Path]) -> None:
    root = tmp_path / "root"
    first = _install(root, wheelhouses["1.0.0"])
    assert "installed release 1.0.0" in first.stdout
    opt, data, etc = root / "opt/outpost", root / "var/lib/outpost", root / "etc/outpost"
    assert os.readlink(opt / "current") == "releases/1.0.0"
    version = subprocess.run(
        [str(opt / "current/venv/bin/outpost"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert version.stdout.strip() == "outpost 1.0.0"
    assert (opt / "releases/1.0.0/.installed").exists()
    assert {_mode(opt), _mode(opt / "releases"), _mode(opt / "updater")} == {0o755}
    assert _mode(data) == 0o750 and _mode(data / "update") == 0o750 and _mode(etc) == 0o750
    assert _mode(etc / "outpost.toml") == 0o640
    for unit in UNITS:
        assert _mode(root / "etc/systemd/system" / unit) == 0o644
    # The default configuration is valid and made for an appliance on an unknown LAN.
    config = load_config(etc / "outpost.toml")
    assert config.discovery.auto_subnets is True
    assert config.hardware.backend == "gpio"
    assert config.updates.root == "/opt/outpost"

    # Idempotent: a second run changes nothing and keeps the operator's configuration.
    (etc / "outpost.toml").write_text('[site]\nname = "Dentist"\n')
    marker = (opt / "releases/1.0.0/.installed").read_text()
    again = _install(root, wheelhouses["1.0.0"])
    assert "release 1.0.0 already installed" in again.stdout
    assert "current ->" not in again.stdout and "wrote" not in again.stdout
    assert (opt / "releases/1.0.0/.installed").read_text() == marker
    assert 'name = "Dentist"' in (etc / "outpost.toml").read_text()

    # A newer release switches current and keeps the old one as previous.
    _install(root, wheelhouses["1.1.0"])
    assert os.readlink(opt / "current") == "releases/1.1.0"
    assert os.readlink(opt / "previous") == "releases/1.0.0"
    assert not list(opt.glob(".*.new"))


def test_an_interrupted_release_build_is_redone(
    tmp_path: Path, wheelhouses: dict[str, Path]
) -> None:
    root = tmp_path / "root"
    half = root / "opt/outpost/releases/1.0.0"
    (half / "venv").mkdir(parents=True)  # a build cut short: no .installed marker
    (half / "venv" / "junk").write_text("x")
    _install(root, wheelhouses["1.0.0"])
    assert not (half / "venv" / "junk").exists()
    assert (half / ".installed").exists()


def test_units_pass_systemd_analyze_verify(tmp_path: Path, wheelhouses: dict[str, Path]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    root = tmp_path / "root"
    _install(root, wheelhouses["1.0.0"])
    # Verified as the host's systemd sees them, with /opt/outpost pointed into the staging root
    # so that every ExecStart must name an executable the install really made.
    checked = tmp_path / "units"
    checked.mkdir()
    for unit in UNITS:
        text = (root / "etc/systemd/system" / unit).read_text()
        (checked / unit).write_text(text.replace("/opt/outpost/", f"{root}/opt/outpost/"))
    done = subprocess.run(
        [analyze, "verify", *(str(checked / u) for u in UNITS)],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert problems == [], problems
