"""Site configuration signed by the MSP: verify, validate, apply, confirm or roll back.

Home sends a document ``{"kind": "outpost.site-config", "appliance": id, "site": name,
"version": n, "config": {section: {...}}}`` signed with the MSP's key. The appliance accepts it
only if, in this order: the signature is the MSP's (the key learnt at the claim), it names this
appliance, its version is newer than the one applied, it only touches sections home may set, and
the whole configuration (the local file with these sections laid over it) validates. Any refusal
leaves the running configuration untouched and is reported home with its exact reason.

An accepted configuration runs on trial: it must reach home within ``confirm_window_s`` (on the
boot clock). Reaching home commits it as the last known good one; not reaching home, or a reboot
during the trial, restores the last known good one. The journal (``config.json``) is written
atomically, so a power cut at any point leaves the old or the new state, never a mix.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core import fsops
from core.clock import BootInfo, Clock, system_clock
from core.config import Config
from core.schema import ConfigError, load_dataclass
from core.wire.signing import CONFIG_KIND, Refused, open_envelope

KIND = CONFIG_KIND
# Sections home may set. Paths on the box ([store], [provisioning], [updates]) stay local: a
# remote document must not be able to point the box at another disk or another signing key.
REMOTE_SECTIONS = frozenset(
    {"site", "log", "web", "discovery", "polling", "alerting", "snmp", "uplink", "hardware"}
)
REPORTS_KEEP = 20


@dataclass(frozen=True)
class SiteConfig:
    version: int
    site: str
    table: dict[str, Any]
    envelope: dict[str, Any]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid over ``base``: tables merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def verify(
    envelope: Any,
    public: Ed25519PublicKey,
    appliance_id: str,
    applied_version: int,
    base: dict[str, Any],
    *,
    rolled_back: frozenset[int] = frozenset(),
) -> tuple[SiteConfig, Config]:
    """The configuration in ``envelope`` and the validated whole it makes; else Refused."""
    doc = open_envelope(envelope, public, KIND)
    if doc.get("appliance") != appliance_id:
        raise Refused(
            f"configuration is for appliance {doc.get('appliance')!r}, this is {appliance_id}"
        )
    version = doc.get("version")
    if type(version) is not int or version < 1:
        raise Refused(f"configuration version {version!r} is not a positive whole number")
    if version <= applied_version:
        raise Refused(
            f"configuration version {version} is not newer than the applied version "
            f"{applied_version}"
        )
    if version in rolled_back:
        # Applying it again would cut the box off again: the box would flap between the two.
        raise Refused(
            f"configuration version {version} was rolled back on this box; fix it and push it "
            "as a newer version"
        )
    table = doc.get("config")
    if not isinstance(table, dict):
        raise Refused(f"configuration {version} has no 'config' table")
    foreign = sorted(set(table) - REMOTE_SECTIONS)
    if foreign:
        raise Refused(
            f"configuration {version} sets sections that stay local to the box: "
            f"{', '.join(foreign)}"
        )
    try:
        config = load_dataclass(Config, merge(base, table))
    except ConfigError as exc:
        raise Refused(f"configuration {version} is invalid: " + "; ".join(exc.problems)) from None
    return SiteConfig(version, str(doc.get("site", "")), table, envelope), config


def changed_sections(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


class ConfigKeeper:
    """The journal of site configurations on this box (``state_dir/config.json``)."""

    def __init__(
        self,
        state_dir: Path,
        window_s: float,
        boot: Any = BootInfo.read,
        clock: Clock | None = None,
    ) -> None:
        self.path = Path(state_dir) / "config.json"
        self.window_s = window_s
        self.boot = boot
        self.clock = clock or system_clock()  # stamps each report's "at" (wall time)

    def load(self) -> dict[str, Any]:
        state = fsops.read_json(self.path)
        if not isinstance(state, dict):
            state = {"applied": None, "last_good": None, "trial": None, "reports": []}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fsops.write_json_atomic(self.path, state, mode=0o640)

    def applied_version(self) -> int:
        applied = self.load().get("applied")
        return int(applied["version"]) if applied else 0

    def applied_table(self) -> dict[str, Any]:
        applied = self.load().get("applied")
        return dict(applied["table"]) if applied else {}

    def _report(self, state: dict[str, Any], version: Any, outcome: str, reason: str) -> None:
        report = {"version": version, "outcome": outcome, "reason": reason, "at": self.clock.wall()}
        state["reports"] = [*state.get("reports", []), report][-REPORTS_KEEP:]

    def offer(
        self,
        envelope: Any,
        public: Ed25519PublicKey,
        appliance_id: str,
        base: dict[str, Any],
    ) -> tuple[dict[str, Any], list[str]]:
        """Take a configuration from home: (the report, the sections it changes)."""
        state = self.load()
        applied_version = int(state["applied"]["version"]) if state.get("applied") else 0
        try:
            site, _config = verify(
                envelope,
                public,
                appliance_id,
                applied_version,
                base,
                rolled_back=frozenset(state.get("rolled_back", [])),
            )
        except Refused as exc:
            version = _peek_version(envelope)
            self._report(state, version, "refused", exc.reason)
            self._save(state)
            return state["reports"][-1], []
        old = state["applied"]["table"] if state.get("applied") else {}
        changed = changed_sections(old, site.table)
        boot = self.boot()
        state["applied"] = {"version": site.version, "table": site.table, "envelope": envelope}
        state["trial"] = {
            "version": site.version,
            "boot_id": boot.boot_id,
            "started_s": boot.uptime_s,
            "window_s": self.window_s,
        }
        self._report(state, site.version, "applied", f"changed: {', '.join(changed) or 'nothing'}")
        self._save(state)
        return state["reports"][-1], changed

    def confirm(self, running_version: int | None = None) -> dict[str, Any] | None:
        """Home was reached with the configuration on trial: it becomes the last known good.

        ``running_version``: the version the process that reached home runs with; a process
        still running the old configuration (about to restart) proves nothing about the new one.
        """
        state = self.load()
        trial = state.get("trial")
        if not trial or (running_version is not None and running_version != trial["version"]):
            return None
        state["last_good"] = state["applied"]
        state["trial"] = None
        self._report(state, trial["version"], "confirmed", "reached home")
        self._save(state)
        confirmed: dict[str, Any] = state["reports"][-1]
        return confirmed

    def check(self) -> tuple[dict[str, Any], list[str]] | None:
        """Roll a trial back when its window ran out or the box rebooted during it."""
        state = self.load()
        trial = state.get("trial")
        if not trial:
            return None
        boot = self.boot()
        if boot.boot_id != trial["boot_id"]:
            why = "the appliance restarted before it reached home with it"
        elif boot.uptime_s - trial["started_s"] > trial["window_s"]:
            why = f"home was not reachable within {trial['window_s']:g} s"
        else:
            return None
        old = state["applied"]["table"] if state.get("applied") else {}
        state["applied"] = state.get("last_good")
        new = state["applied"]["table"] if state["applied"] else {}
        state["trial"] = None
        if boot.boot_id == trial["boot_id"]:
            # Cut off from home by this very configuration: never apply it again. (A reboot
            # during the trial, e.g. a power cut, says nothing against it; it may come again.)
            state["rolled_back"] = sorted({*state.get("rolled_back", []), trial["version"]})[
                -REPORTS_KEEP:
            ]
        back_to = state["applied"]["version"] if state["applied"] else 0
        self._report(state, trial["version"], "rolled_back", f"{why}; back to version {back_to}")
        self._save(state)
        return state["reports"][-1], changed_sections(old, new)

    def take_reports(self) -> list[dict[str, Any]]:
        return list(self.load().get("reports", []))

    def drop_reports(self, count: int) -> None:
        """Home acknowledged the first ``count`` reports."""
        state = self.load()
        state["reports"] = state.get("reports", [])[count:]
        self._save(state)


def _peek_version(envelope: Any) -> Any:
    """The version an (untrusted) envelope claims, only for the refusal report."""
    import json

    from core.wire.keys import unb64

    try:
        version = json.loads(unb64(envelope["doc"])).get("version")
    except (KeyError, TypeError, ValueError, AttributeError):  # not an envelope, bad base64/JSON
        return None
    return version if type(version) is int else None


def read_table(path: str | Path) -> dict[str, Any]:
    """A TOML file as a table ({} when it does not exist)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}


def load_effective_config(path: str | Path) -> Config:
    """The configuration to run: the file, with the applied signed site configuration over it.

    Used at start (``outpost run``). The signed sections were fully validated when they were
    accepted; should they still not fit (the local file was edited since), the file alone is
    used and the reason logged, so a box always starts with a configuration it can run.
    """
    from core.config import load_config
    from core.logs import get_log

    local = load_config(path)
    keeper = ConfigKeeper(Path(local.provisioning.state_dir), local.provisioning.confirm_window_s)
    overlay = keeper.applied_table()
    if not overlay:
        return local
    try:
        return load_dataclass(Config, merge(read_table(path), overlay))
    except ConfigError as exc:
        get_log("provisioning").error(
            "config.overlay_unusable",
            version=keeper.applied_version(),
            problems="; ".join(exc.problems),
        )
        return local
