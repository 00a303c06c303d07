"""Group commit in the real appliance (`python -m firmware run` polling loopback addresses).

* SIGTERM: the store commits every poll it still holds before the process exits.
* SIGKILL at random moments, with a real home receiving: each kill loses at most the commit
  window of polls, and home ends up with every record the appliance committed, once each, in
  order per lane (the uplink reads only committed rows, so nothing a kill took back was sent).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from core.config import parse_config
from simsite.harness.appliance import FAST_UPLINK, toml_section
from tests.uplink_support import OUTPOST, identity_for, running_home

POLL_S = 0.2  # every loopback device is polled this often
KILLS = 5


def _config(tmp: Path, window_s: float, *, polling: bool = True, home: Any = None) -> Path:
    lines = ["[web]", "enabled = false", "[discovery]", "enabled = false"]
    lines += toml_section(
        "store", {"path": str(tmp / "data" / "outpost.db"), "commit_window_s": window_s}
    )
    lines += toml_section("provisioning", {"identity_dir": str(tmp / "identity")})
    if home is not None:
        # Acknowledgements commit at once (and take the held polls along): keep them rarer
        # than the window, so most polls are committed by the window, as on a site.
        uplink = {**FAST_UPLINK, "batch_max_age_s": 3 * window_s}
        lines += toml_section("uplink", {"url": home.url, "ca_file": str(home.ca_file), **uplink})
    lines += toml_section(
        "polling",
        {
            "enabled": polling,
            "interval_s": POLL_S,
            "jitter_frac": 0.0,
            "icmp_count": 1,
            "icmp_timeout_s": 0.2,
        },
    )
    for n in (1, 2):
        lines += ["[[polling.devices]]", f'name = "loopback {n}"', f'ip = "127.0.0.{n}"']
        lines += ['kind = "server"']
    path = tmp / "outpost.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as errors:
        return subprocess.Popen(
            [*OUTPOST, "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'measurements'"
        if conn.execute(table).fetchone() is None:
            return []
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _polls(db: Path) -> tuple[int, float]:
    """(reachability verdicts committed, wall time of the newest): one verdict per poll."""
    rows = _rows(
        db,
        "SELECT COUNT(*), MAX(m.ts) FROM measurements m JOIN series s ON s.id = m.series"
        " WHERE s.metric = 'device.reachable'",
    )
    return (int(rows[0][0]), float(rows[0][1] or 0.0)) if rows else (0, 0.0)


def _wait_for_polls(db: Path, more_than: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not db.exists() or _polls(db)[0] <= more_than:
        assert proc.poll() is None, f"the appliance exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the appliance committed no poll in 60 s"
        time.sleep(0.1)


def test_sigterm_commits_every_held_poll(tmp_path: Path) -> None:
    window = 600.0  # far longer than the run: nothing but the stop commits a poll
    config = _config(tmp_path, window)
    db = tmp_path / "data" / "outpost.db"
    log = tmp_path / "appliance.log"
    proc = _start(config, log)
    try:
        time.sleep(8.0)  # start-up (1-4 s on a loaded machine), then polls every 0.2 s
        assert proc.poll() is None, log.read_text()[-2000:]
        # Only writes that cannot wait (start-up's configured devices, an alert) commit
        # held polls before the stop; most are held.
        before, _ = _polls(db) if db.exists() else (0, 0.0)
        stopped_at = time.time()
        _signal(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            _signal(proc, signal.SIGKILL)
    assert proc.returncode == 0, log.read_text()[-2000:]
    after, newest = _polls(db)
    # 2 devices every 0.2 s for at least 4 s: about 40 polls were held (10 at the very least
    # on a loaded machine), and the stop committed them, the newest just before the stop.
    assert after - before >= 10, (before, after)
    assert stopped_at - newest < 1.5, "the last polls before the stop were not committed"


def test_sigkill_loses_at_most_the_window_and_home_gets_all_once(tmp_path: Path) -> None:
    window = 1.0
    slack = 2.0  # a poll's own duration, the writer thread's lateness on a loaded machine
    rng = random.Random(20261130)
    db = tmp_path / "data" / "outpost.db"
    log = tmp_path / "appliance.log"
    with running_home(tmp_path) as home:
        config = _config(tmp_path, window, home=home)
        identity = identity_for(parse_config(config.read_text(), str(config)))
        home.register(identity)
        proc: subprocess.Popen[bytes] | None = None
        try:
            seen = 0
            for _ in range(KILLS):
                proc = _start(config, log)
                _wait_for_polls(db, seen, proc, log)
                time.sleep(rng.uniform(0.5, 2.5))
                killed_at = time.time()
                _signal(proc, signal.SIGKILL)
                proc = None
                seen, newest = _polls(db)
                lost_s = killed_at - newest
                assert lost_s < window + POLL_S + slack, f"{lost_s:.2f} s of polls lost"
            # Drain with polling off (nothing new), then stop cleanly.
            _config(tmp_path, window, polling=False, home=home)
            proc = _start(config, log)
            deadline = time.monotonic() + 60
            while _rows(db, "SELECT COUNT(*) FROM outbox")[0][0] and time.monotonic() < deadline:
                time.sleep(0.3)
            _signal(proc, signal.SIGTERM)
            proc = None
        finally:
            if proc is not None:
                _signal(proc, signal.SIGKILL)
        assert _rows(db, "SELECT COUNT(*) FROM outbox")[0][0] == 0, "the outbox did not drain"
        local = _rows(
            db,
            "SELECT s.metric, s.instance, m.ts, m.value FROM measurements m"
            " JOIN series s ON s.id = m.series ORDER BY m.id",
        )
        got = home.rows(
            "SELECT seq, lane, kind, ts, body FROM records WHERE appliance = ? ORDER BY id",
            (identity.appliance_id,),
        )
    remote = [
        (body["metric"], body["instance"], ts, body["value"])
        for _seq, _lane, kind, ts, text in got
        if kind == "measurement"
        for body in [json.loads(text)]
    ]
    assert len(local) > KILLS * 20, "the appliance must have stored polls between kills"
    assert remote == local  # every committed measurement, once, in the order it was stored
    for lane in (0, 1):
        seqs = [seq for seq, lane_, *_rest in got if lane_ == lane]
        assert seqs == sorted(set(seqs)), f"lane {lane} out of order or duplicated"
