"""SIGKILL the real appliance process (and home) at random moments: nothing lost, nothing twice.

The appliance (`python -m firmware run`) produces records by measuring itself every 50 ms; home
is the real `outpost-home run`. After the last kill the appliance runs until its outbox is empty,
and home must then hold exactly the appliance's committed records, once each, in order per lane.
OUTPOST_LONG=1 raises the kills from 10 to 50.
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

from tests.uplink_support import OUTPOST, appliance_config, identity_for, running_home

LONG = os.environ.get("OUTPOST_LONG") == "1"
KILLS = 50 if LONG else 10


def _start(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as errors:
        return subprocess.Popen(
            [*OUTPOST, "run", "--config", str(config_path)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )


def _kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(15)


def _local(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_sigkill_appliance_and_home_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    with running_home(tmp_path) as home:
        config, config_path = appliance_config(
            tmp_path, home, self_measure_s=0.05, batch_max_age_s=0.1, heartbeat_s=0.5
        )
        identity = identity_for(config)
        home.register(identity)
        db = Path(config.store.path)
        log = tmp_path / "appliance.log"
        proc: subprocess.Popen[bytes] | None = None
        try:
            for kill in range(KILLS):
                proc = _start(config_path, log)
                time.sleep(rng.uniform(0.4, 2.0))  # sometimes during start, mostly mid-stream
                if kill % 3 == 1:
                    home.kill()  # home dies too, possibly mid-transaction
                    home.start()
                _kill(proc)
                proc = None
            # Let the appliance drain with nothing new being produced, then stop it cleanly.
            text = config_path.read_text()
            assert "self_measure_s = 0.05" in text
            config_path.write_text(text.replace("self_measure_s = 0.05", "self_measure_s = 0.0"))
            proc = _start(config_path, log)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.3)
                pending = _local(db, "SELECT COUNT(*) FROM outbox")[0][0]
                if pending == 0:
                    break
            _kill(proc, signal.SIGTERM)
            proc = None
        finally:
            if proc is not None:
                _kill(proc)
        assert _local(db, "SELECT COUNT(*) FROM outbox")[0][0] == 0, "the outbox did not drain"
        local = _local(
            db,
            "SELECT s.metric, m.ts, m.value FROM measurements m JOIN series s ON s.id = m.series"
            " ORDER BY m.id",
        )
        local_events = _local(db, "SELECT kind, ts FROM events ORDER BY id")
        boots = _local(db, "SELECT COUNT(*) FROM boots")[0][0]
        got = home.rows(
            "SELECT seq, lane, kind, ts, body FROM records WHERE appliance = ? ORDER BY id",
            (identity.appliance_id,),
        )
    remote = [
        (json.loads(body)["metric"], ts, json.loads(body)["value"])
        for _s, _l, kind, ts, body in got
        if kind == "measurement"
    ]
    remote_events = [
        (json.loads(body)["kind"], ts) for _s, _l, kind, ts, body in got if kind == "event"
    ]
    assert len(local) > KILLS * 10, "the appliance must have produced records between kills"
    assert remote == local  # every committed measurement, once, in the order it was stored
    assert remote_events == local_events
    for lane in (0, 1):
        seqs = [seq for seq, lane_, *_rest in got if lane_ == lane]
        assert seqs == sorted(set(seqs)), f"lane {lane} out of order or duplicated"
    assert boots >= 1
    print(f"crash test: {KILLS} kills, {len(local)} measurements, {len(got)} records at home")
