"""The update journal: one update at a time, driven through idempotent phases.

Every phase starts by writing the phase to ``updater/state.json`` (atomically) and is written so
that running it again after a kill -9 or a power cut at any instruction gives the same result::

    downloading -> verifying -> unpacking -> building -> switching -> trial -> (idle: committed)
                      |             |            |                       |
                      +-------------+------------+--> idle: refused      +--> rolling_back -> idle

* Before ``switching`` the ``current`` link is never touched: an interrupted or refused update
  leaves the running release exactly as it was; the next ``resume`` continues the job (the
  download resumes, a half-unpacked or half-built release is removed and redone).
* ``switching`` first records the trial in the journal, then renames the ``current`` link, so a
  cut between the two is completed by ``resume``.
* ``trial``: the new release must report healthy (the appliance writes ``health.json`` in the
  mailbox) within ``trial_window_s`` of this boot's clock and within ``max_trial_boots`` boots;
  otherwise ``current`` is switched back to the previous release, which is always kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core import fsops
from core.clock import BootInfo
from core.logs import get_log
from core.settings.updates import UpdateSettings
from core.update_state import JOURNAL_DIR, journal_path
from core.wire.keys import load_public_key
from firmware.updater.manifest import (
    BundleRefused,
    OpenedBundle,
    check_payload,
    read_signed_manifest,
    sha256_file,
)
from firmware.updater.versions import BadVersion, parse_version

log = get_log("updater")

HISTORY_KEEP = 20
PIP_TIMEOUT_S = 600.0
SMOKE_TIMEOUT_S = 120.0
# Test hook: the installer stops dead at this named step (kill -9 tests); see _pause_point.
PAUSE_ENV = "OUTPOST_UPDATER_PAUSE_AT"

PRE_SWITCH_PHASES = ("downloading", "verifying", "unpacking", "building")


class UpdateError(Exception):
    """A step failed for a reason that may pass (network, disk); the job is retried."""


def _now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _pause_point(step: str, root: Path) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        (root / "updater" / f"paused-{step}").write_text(str(os.getpid()))
        while True:  # wait to be killed
            time.sleep(3600)


class Updater:
    def __init__(
        self,
        settings: UpdateSettings,
        *,
        boot: Callable[[], BootInfo] = BootInfo.read,
        root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.root = Path(root or settings.root)
        self.releases = self.root / "releases"
        self.current_link = self.root / "current"
        self.previous_link = self.root / "previous"
        self.work = self.root / JOURNAL_DIR
        self.downloads = self.work / "downloads"
        self.state_path = journal_path(self.root)  # read back by core.update_state
        self.mailbox = Path(settings.mailbox_dir)
        self.boot = boot
        self.trusted = [load_public_key(k) for k in settings.release_keys]

    # ---- journal ----

    def ensure_dirs(self) -> None:
        for d in (self.releases, self.work, self.downloads):
            d.mkdir(parents=True, exist_ok=True)

    def state(self) -> dict[str, Any]:
        state = fsops.read_json(self.state_path)
        if not isinstance(state, dict):
            state = {"phase": "idle", "job": None, "trial": None, "history": []}
        state.setdefault("history", [])
        state["current"] = self._link_version(self.current_link)
        state["previous"] = self._link_version(self.previous_link)
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.ensure_dirs()
        fsops.write_json_atomic(self.state_path, state)

    def _link_version(self, link: Path) -> str | None:
        target = fsops.read_link(link)
        return Path(target).name if target else None

    def _finish(self, state: dict[str, Any], outcome: str, reason: str) -> dict[str, Any]:
        job = state.get("job") or {}
        result = {
            "version": job.get("version") or (state.get("trial") or {}).get("version"),
            "url": job.get("url"),
            "command_id": job.get("command_id"),
            "outcome": outcome,
            "reason": reason,
            "at": _now_text(),
        }
        state.update(phase="idle", job=None, trial=None, last_result=result)
        state["history"] = [*state["history"], result][-HISTORY_KEEP:]
        self._save(state)
        log_fn = log.info if outcome == "committed" else log.warning
        log_fn("update.finished", outcome=outcome, version=result["version"], reason=reason)
        return result

    # ---- starting a job ----

    def request(
        self, url: str, *, version: str | None = None, command_id: str | None = None
    ) -> dict[str, Any]:
        """Start an update from ``url`` (http(s):// or a local path). Idempotent for one job."""
        state = self.state()
        job = state.get("job")
        if state["phase"] != "idle" and job:
            if job.get("url") == url:
                return state  # the same request again (retried command): keep going
            raise UpdateError(
                f"an update to {job.get('version') or job.get('url')} is in phase "
                f"{state['phase']}; wait for it to finish"
            )
        if version is not None:
            try:
                parse_version(version)
            except BadVersion as exc:
                raise UpdateError(str(exc)) from None
        state.update(
            phase="downloading",
            job={"url": url, "version": version, "command_id": command_id, "attempts": 0},
        )
        self._save(state)
        log.info("update.requested", url=url, version=version)
        return state

    # ---- driving the job ----

    async def run(self) -> dict[str, Any]:
        """Drive the job in progress as far as it goes now; return the state at the end."""
        self.ensure_dirs()
        self._clean_stray_links()
        state = self.state()
        while state["phase"] in (*PRE_SWITCH_PHASES, "switching", "rolling_back"):
            phase = state["phase"]
            try:
                if phase == "downloading":
                    await self._download(state)
                elif phase == "verifying":
                    self._verify(state)
                elif phase == "unpacking":
                    self._unpack(state)
                elif phase == "building":
                    self._build(state)
                elif phase == "switching":
                    self._switch(state)
                elif phase == "rolling_back":
                    self._rollback_finish(state)
            except BundleRefused as exc:
                self._discard_job_files(state)
                self._finish(state, "refused", exc.reason)
            except (UpdateError, OSError, tarfile.TarError) as exc:
                # Passing trouble (network, a full disk): counted, retried by the next resume.
                job = state["job"]
                job["attempts"] = job.get("attempts", 0) + 1
                job["last_error"] = str(exc)
                log.warning("update.step_failed", phase=phase, error=str(exc))
                if job["attempts"] >= self.settings.max_attempts:
                    self._discard_job_files(state)
                    self._finish(state, "failed", f"gave up after {job['attempts']} tries: {exc}")
                else:
                    self._save(state)
                break
            state = self.state()
        return self.check()

    def _bundle_path(self, state: dict[str, Any]) -> Path:
        name = Path(urlparse(state["job"]["url"]).path).name or "bundle"
        return self.downloads / f"{name}.bundle"

    async def _download(self, state: dict[str, Any]) -> None:
        url = state["job"]["url"]
        dest = self._bundle_path(state)
        if not dest.exists():
            parsed = urlparse(url)
            if parsed.scheme in ("http", "https"):
                from firmware.updater.download import DownloadError, download

                _pause_point("download", self.root)
                try:
                    await download(url, dest)
                except DownloadError as exc:
                    raise UpdateError(str(exc)) from None
            else:
                _copy_local(Path(parsed.path if parsed.scheme == "file" else url), dest)
        state["phase"] = "verifying"
        self._save(state)
        _pause_point("downloaded", self.root)

    def _open(self, state: dict[str, Any]) -> OpenedBundle:
        if not self.trusted:
            raise BundleRefused("no release keys are configured ([updates] release_keys)")
        return read_signed_manifest(self._bundle_path(state), self.trusted)

    def _verify(self, state: dict[str, Any]) -> None:
        opened = self._open(state)
        manifest = opened.manifest
        job = state["job"]
        if job.get("version") and job["version"] != manifest.version:
            raise BundleRefused(
                f"bundle is version {manifest.version}, the request asked for {job['version']}"
            )
        running = state.get("current")
        if running is not None:
            self._check_policy(manifest.version, running, manifest.downgrade_from)
        check_payload(self._bundle_path(state), opened)
        job["version"] = manifest.version
        job["key_id"] = opened.key_id
        state["phase"] = "unpacking"
        self._save(state)
        _pause_point("verified", self.root)

    @staticmethod
    def _check_policy(version: str, running: str, downgrade_from: tuple[str, ...]) -> None:
        try:
            new, old = parse_version(version), parse_version(running)
        except BadVersion as exc:
            raise BundleRefused(str(exc)) from None
        if new == old:
            raise BundleRefused(f"version {version} is already running")
        if new < old and running not in downgrade_from:
            raise BundleRefused(
                f"downgrade refused: {version} is older than the running {running} and the "
                "release is not signed as a rollback from it"
            )

    def _unpack(self, state: dict[str, Any]) -> None:
        opened = self._open(state)  # re-verified: the file on disk is all we trust
        check_payload(self._bundle_path(state), opened)
        manifest = opened.manifest
        release = self.releases / manifest.version
        staging = self.releases / f".staging-{manifest.version}"
        fsops.remove_tree(staging)
        if release.exists() and not (release / ".installed").exists():
            fsops.remove_tree(release)  # a half-built leftover of an interrupted attempt
        if not release.exists():
            staging.mkdir(parents=True)
            with self._bundle_path(state).open("rb") as raw:
                raw.seek(opened.payload_offset)
                with tarfile.open(fileobj=raw, mode="r:gz") as tar:
                    # 'data' refuses absolute paths, '..', links out of the tree and devices.
                    tar.extractall(staging, filter="data")
            found = {str(p.relative_to(staging)) for p in staging.rglob("*") if not p.is_dir()}
            listed = set(manifest.files)
            if found != listed:
                extra, missing = sorted(found - listed), sorted(listed - found)
                raise BundleRefused(
                    f"payload does not match its manifest: extra {extra[:5]}, missing {missing[:5]}"
                )
            for rel, digest in manifest.files.items():
                if sha256_file(staging / rel) != digest:
                    raise BundleRefused(f"wrong hash: {rel} does not match the manifest")
            (staging / "manifest.json").write_bytes(manifest.to_bytes())
            _pause_point("unpacked_staging", self.root)
            os.replace(staging, release)
            fsops.fsync_dir(self.releases)
        state["phase"] = "building"
        self._save(state)
        _pause_point("unpacked", self.root)

    def _build(self, state: dict[str, Any]) -> None:
        version = state["job"]["version"]
        release = self.releases / version
        marker = release / ".installed"
        if not marker.exists():
            venv = release / "venv"
            fsops.remove_tree(venv)
            wheels = sorted((release / "wheels").glob("*.whl"))
            if not wheels:
                self._discard_release(version)
                raise BundleRefused("the release carries no wheels to install")
            # pip runs straight from the bundle's own pip wheel (pip supports running from its
            # wheel): no pip of the OS, no ensurepip, and the release's set of libraries is only
            # what it ships. A bundle without a pip wheel gets the interpreter's bundled pip.
            pip_wheel = next((w for w in wheels if w.name.startswith("pip-")), None)
            args = [self.settings.python, "-m", "venv"]
            if self.settings.system_site_packages:
                args.append("--system-site-packages")
            if pip_wheel is not None:
                args.append("--without-pip")
            self._run([*args, str(venv)], "create the virtualenv", PIP_TIMEOUT_S)
            if self.settings.extra_site_dirs:
                site = next((venv / "lib").glob("python*/site-packages"))
                (site / "outpost-base.pth").write_text(
                    "".join(f"{d}\n" for d in self.settings.extra_site_dirs)
                )
            _pause_point("venv_created", self.root)
            pip = [str(pip_wheel / "pip")] if pip_wheel is not None else ["-m", "pip"]
            self._run(
                [
                    str(venv / "bin" / "python"),
                    *pip,
                    "install",
                    "--no-index",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--quiet",
                    # pip itself is a tool of the install, not part of the running release.
                    *(str(w) for w in wheels if w != pip_wheel),
                ],
                "install the release's wheels",
                PIP_TIMEOUT_S,
            )
            _pause_point("pip_installed", self.root)
            self._smoke_test(release, version)
            marker.write_text(_now_text() + "\n")
            fsops.fsync_dir(release)
        state["phase"] = "switching"
        state["trial"] = {
            "version": version,
            "from": state.get("current"),
            "from_previous": state.get("previous"),
            "boot_id": self.boot().boot_id,
            "started_s": self.boot().uptime_s,
            "boots": 1,
            "window_s": self.settings.trial_window_s,
            "switched_at": _now_text(),
        }
        self._save(state)
        _pause_point("installed", self.root)

    def _run(self, argv: list[str], what: str, timeout_s: float) -> None:
        try:
            proc = subprocess.run(
                argv, check=False, capture_output=True, text=True, timeout=timeout_s
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpdateError(f"could not {what}: {exc}") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise UpdateError(f"could not {what} (exit {proc.returncode}): {' | '.join(tail)}")

    def _smoke_test(self, release: Path, version: str) -> None:
        """The new release must import all its code and name itself correctly before we switch."""
        # -I and cwd: import only what the release itself installed (never the cwd's tree).
        argv = [
            str(release / "venv" / "bin" / "python"),
            "-I",
            "-m",
            "firmware.updater",
            "selftest",
            "--expect-version",
            version,
            "--expect-root",
            str(release),
        ]
        try:
            proc = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                timeout=SMOKE_TIMEOUT_S,
                cwd=release,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._discard_release(version)
            raise BundleRefused(f"release {version} failed its self-test: {exc}") from None
        if proc.returncode != 0:
            self._discard_release(version)
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise BundleRefused(f"release {version} failed its self-test: {tail}")

    def _switch(self, state: dict[str, Any]) -> None:
        trial = state["trial"]
        version = trial["version"]
        # Health reports of an earlier attempt must not confirm this one.
        (self.mailbox / "health.json").unlink(missing_ok=True)
        fsops.switch_symlink(self.current_link, f"releases/{version}")
        _pause_point("switched", self.root)
        if trial.get("from") and trial["from"] != version:
            fsops.switch_symlink(self.previous_link, f"releases/{trial['from']}")
        state["phase"] = "trial"
        self._save(state)
        log.info("update.trial", version=version, previous=trial.get("from"))
        self._restart_appliance()

    def _restart_appliance(self) -> None:
        if self.settings.restart_command:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(list(self.settings.restart_command), timeout=60, check=False)

    # ---- trial, commit, rollback ----

    def check(self) -> dict[str, Any]:
        """Commit a healthy trial, or roll back one that ran out of time or boots."""
        state = self.state()
        if state["phase"] == "rolling_back":
            self._rollback_finish(state)
            return self.state()
        if state["phase"] != "trial":
            return state
        trial = state["trial"]
        health = fsops.read_json(self.mailbox / "health.json")
        if isinstance(health, dict) and health.get("version") == trial["version"]:
            if state["current"] != trial["version"]:
                # A report of the version we are not running cannot be trusted; wait.
                return state
            self._commit(state)
            return self.state()
        boot = self.boot()
        if boot.boot_id != trial["boot_id"]:
            trial.update(boot_id=boot.boot_id, started_s=boot.uptime_s, boots=trial["boots"] + 1)
            self._save(state)
            if trial["boots"] > self.settings.max_trial_boots:
                return self.rollback(
                    f"release {trial['version']} did not report healthy in "
                    f"{trial['boots'] - 1} boots"
                )
            log.warning("update.trial_reboot", version=trial["version"], boots=trial["boots"])
        elif boot.uptime_s - trial["started_s"] > trial["window_s"]:
            return self.rollback(
                f"release {trial['version']} did not report healthy within {trial['window_s']:g} s"
            )
        return state

    def _commit(self, state: dict[str, Any]) -> None:
        trial = state["trial"]
        keep = {trial["version"], trial.get("from")}
        self._finish(state, "committed", f"release {trial['version']} reported healthy")
        for release in self.releases.iterdir():
            if release.name not in keep and not release.name.startswith("."):
                fsops.remove_tree(release)
        for stale in self.downloads.iterdir():
            stale.unlink()

    def rollback(self, reason: str) -> dict[str, Any]:
        """Switch back to the release that ran before the trial (always kept on disk)."""
        state = self.state()
        if state["phase"] not in ("trial", "switching", "rolling_back"):
            raise UpdateError(f"nothing to roll back (phase {state['phase']})")
        state["phase"] = "rolling_back"
        state["rollback_reason"] = reason
        self._save(state)
        self._rollback_finish(state)
        return self.state()

    def _rollback_finish(self, state: dict[str, Any]) -> None:
        trial = state["trial"]
        back_to = trial.get("from")
        if back_to:
            fsops.switch_symlink(self.current_link, f"releases/{back_to}")
            _pause_point("rolled_back_link", self.root)
            if trial.get("from_previous"):
                fsops.switch_symlink(self.previous_link, f"releases/{trial['from_previous']}")
        failed = trial["version"]
        self._finish(state, "rolled_back", state.pop("rollback_reason", "rolled back"))
        if back_to and failed != back_to:
            self._discard_release(failed)
        self._restart_appliance()

    # ---- housekeeping ----

    def _discard_release(self, version: str) -> None:
        fsops.remove_tree(self.releases / f".staging-{version}")
        if version not in (
            self._link_version(self.current_link),
            self._link_version(self.previous_link),
        ):
            fsops.remove_tree(self.releases / version)

    def _discard_job_files(self, state: dict[str, Any]) -> None:
        job = state.get("job") or {}
        if job.get("url"):
            bundle = self._bundle_path(state)
            for path in (
                bundle,
                bundle.with_name(bundle.name + ".part"),
                bundle.with_name(bundle.name + ".part.etag"),
            ):
                path.unlink(missing_ok=True)
        if job.get("version"):
            self._discard_release(job["version"])

    def _clean_stray_links(self) -> None:
        for link in (self.current_link, self.previous_link):
            tmp = link.with_name(f".{link.name}.new")
            if tmp.is_symlink():
                tmp.unlink()


def _copy_local(source: Path, dest: Path) -> None:
    """A bundle given as a file (USB stick, scp): copied in so the journal owns its copy."""
    if not source.is_file():
        raise BundleRefused(f"bundle file {source} does not exist")
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
