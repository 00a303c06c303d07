"""Test support for the uplink: a real home server subprocess with its own CA, and appliances."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import Config, parse_config
from core.supervisor import Supervisor
from core.wire.keys import Identity
from firmware.app import build
from home.ca import init_ca, issue_cert
from home.db import HomeDB
from provisioning.identity import load_or_create
from services.context import AppContext

HOME = [sys.executable, "-m", "home.cli"]
OUTPOST = [sys.executable, "-m", "firmware"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Home:
    """One ``outpost-home run`` process on loopback, with a CA made for this test."""

    data_dir: Path
    ca_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    faults: str = ""
    proc: subprocess.Popen[bytes] | None = None
    netns: str = ""  # run inside this namespace of ``site`` (a simsite.site.Site)
    site: Any = None
    fleet_password: str = ""

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "home.db"

    def prepare(self) -> None:
        init_ca(self.ca_dir)
        issue_cert(self.ca_dir, self.data_dir, [self.host, "localhost"])
        db = HomeDB(self.db_path)
        db.open_sync()
        db.close_sync()
        if not self.port:
            self.port = free_port(self.host) if not self.netns else 8443

    def start(self) -> None:
        argv = [
            *HOME,
            "run",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"{self.host}:{self.port}",
        ]
        if self.faults:
            argv += ["--faults", self.faults]
        if self.fleet_password:
            password_file = self.data_dir / "fleet.password"
            password_file.write_text(self.fleet_password + "\n")
            argv += ["--fleet-password-file", str(password_file)]
        with open(self.data_dir / "home.log", "ab") as errors:
            if self.site is not None:  # inside the simulated site's MSP namespace
                self.proc = self.site.popen_in(
                    self.netns, argv, stdout=subprocess.PIPE, stderr=errors
                )
            else:
                self.proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
                )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b"listening" not in line:
            self.stop()
            log = (self.data_dir / "home.log").read_text(errors="replace")
            raise RuntimeError(f"home did not start: {line!r}\n{log[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def register(self, identity: Identity, site: str = "Test site") -> None:
        db = HomeDB(self.db_path)
        db.open_sync()
        try:
            db.register_sync(identity.appliance_id, identity.public_text, site)
        finally:
            db.close_sync()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def records(self, appliance: str) -> list[tuple[int, int, str, dict[str, Any]]]:
        """(seq, lane, kind, body) in arrival order."""
        return [
            (seq, lane, kind, json.loads(body))
            for seq, lane, kind, body in self.rows(
                "SELECT seq, lane, kind, body FROM records WHERE appliance = ? ORDER BY id",
                (appliance,),
            )
        ]


@contextlib.contextmanager
def running_home(tmp: Path, faults: str = "", fleet_password: str = "") -> Iterator[Home]:
    home = Home(tmp / "home", tmp / "ca", faults=faults, fleet_password=fleet_password)
    home.prepare()
    home.start()
    try:
        yield home
    finally:
        home.stop()


def appliance_config(
    tmp: Path, home: Home, store: dict[str, Any] | None = None, **uplink: Any
) -> tuple[Config, Path]:
    """A configuration for an appliance in ``tmp`` that sends to ``home``; returns its path too."""
    settings = {
        "url": home.url,
        "ca_file": str(home.ca_file),
        "batch_max_age_s": 0.2,
        "backoff_first_s": 0.05,
        "backoff_cap_s": 0.5,
        "request_timeout_s": 2.0,
        "heartbeat_s": 1.0,
        "self_measure_s": 0.0,
        **uplink,
    }
    # Loopback tests: nothing may sweep or poll the machine's real networks.
    lines = ["[web]", "enabled = false", "[discovery]", "enabled = false"]
    lines += ["[polling]", "enabled = false", "[store]"]
    store_settings = {"path": str(tmp / "outpost.db"), **(store or {})}
    lines += [f"{key} = {json.dumps(value)}" for key, value in store_settings.items()]
    lines += ["[provisioning]", f'identity_dir = "{tmp / "identity"}"', "[uplink]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    text = "\n".join(lines) + "\n"
    path = tmp / "outpost.toml"
    path.write_text(text)
    return parse_config(text, str(path)), path


@contextlib.asynccontextmanager
async def running_appliance(config: Config, clock: Clock | None = None) -> Any:
    ctx, supervisor = build(config, clock)
    await supervisor.start()
    try:
        yield ctx, supervisor
    finally:
        await supervisor.stop()


def identity_for(config: Config) -> Identity:
    return load_or_create(config.provisioning.identity_dir)


async def wait_for(predicate: Any, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def supervisor_states(supervisor: Supervisor) -> dict[str, str]:
    return {name: s.state for name, s in supervisor.states.items()}


def ctx_backlog(ctx: AppContext) -> Any:
    return ctx.status.snapshot().get("uplink.backlog")
