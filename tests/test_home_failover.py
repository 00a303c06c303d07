"""Several home instances behind HAProxy on one PostgreSQL: instances die, no record is lost.

Three ``outpost-home run`` processes share one PostgreSQL database behind HAProxy (TLS passed
through). Light appliances (simsite.harness.signed_client: the real signed protocol, one key
each) send batches the way a box's outbox does: the same batch again until home acknowledges
it, then the next. Instances are killed with SIGKILL at random moments and restarted, 20 times.
At the end home holds every record of every appliance exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from pathlib import Path

import aiohttp
import pytest

from simsite.harness import haproxy
from simsite.harness import home as home_harness
from simsite.harness.home import Home
from simsite.harness.postgres import PostgresServer, fresh_database
from simsite.harness.signed_client import LightAppliance, new_identity

APPLIANCES = 12
RECORDS_PER_BATCH = 20
INSTANCES = 3
KILLS = 20
RETRY_S = 0.1
REQUEST_TIMEOUT_S = 5.0


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_server: PostgresServer
) -> list[Home]:  # three instances, not yet started
    try:
        haproxy.binary()
    except haproxy.HaproxyUnavailable as exc:
        pytest.skip(f"several home instances not tested: {exc}")
    first = Home(tmp_path / "home1", tmp_path / "ca", database=fresh_database(postgres_server))
    first.prepare()
    return [first] + [first.replica(tmp_path / f"home{i}") for i in range(2, INSTANCES + 1)]


async def _send_until_stopped(
    box: LightAppliance, url: str, tls: ssl.SSLContext, stop: asyncio.Event, counts: dict[str, int]
) -> None:
    """A box's outbox: resend the pending batch until acknowledged, then take the next."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pending = None
        while not (stop.is_set() and pending is None):
            if pending is None:
                pending = box.batch(
                    [
                        (1, "measurement", {"metric": "m", "value": float(box.next_seq)})
                        for _ in range(RECORDS_PER_BATCH)
                    ],
                    ts=1.8e9,
                )
            last = pending["records"][-1]["seq"]
            try:
                status, answer = await box.post(session, url, pending, tls)
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                counts["retries"] += 1
                await asyncio.sleep(RETRY_S)
                continue
            if status == 200 and int(answer["acked"]["1"]) >= last:
                counts["acked_batches"] += 1
                pending = None
            else:
                counts["retries"] += 1
                await asyncio.sleep(RETRY_S)


async def test_killed_instances_lose_and_duplicate_nothing(cluster: list[Home]) -> None:
    rng = random.Random(20261130)
    boxes = [LightAppliance(new_identity()) for _ in range(APPLIANCES)]
    for box in boxes:
        cluster[0].register(box.identity)
    for instance in cluster:
        instance.start()
    counts = {"retries": 0, "acked_batches": 0}
    stop = asyncio.Event()
    try:
        with haproxy.running([h.port for h in cluster]) as balancer:
            tls = ssl.create_default_context(cafile=str(cluster[0].ca_file))
            senders = [
                asyncio.create_task(_send_until_stopped(b, balancer.url, tls, stop, counts))
                for b in boxes
            ]
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                victim = rng.choice([h for h in cluster if h.proc is not None])
                victim.kill()
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                await asyncio.to_thread(victim.start)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*senders), timeout=60)
    finally:
        stop.set()
        for instance in cluster:
            with contextlib.suppress(Exception):
                instance.stop()
    assert counts["retries"] > 0, "no instance was killed while a batch was in flight"
    for box in boxes:
        rows = cluster[0].rows(
            "SELECT seq FROM records WHERE appliance = ? ORDER BY id", (box.identity.appliance_id,)
        )
        seqs = [int(seq) for (seq,) in rows]
        sent = box.next_seq - 1
        assert seqs == list(range(1, sent + 1)), (
            f"{box.identity.appliance_id}: {len(seqs)} rows for {sent} records sent "
            f"(lost or duplicated or out of order)"
        )
    total = cluster[0].rows("SELECT COUNT(*) FROM records")[0][0]
    assert total == sum(b.next_seq - 1 for b in boxes) >= APPLIANCES * RECORDS_PER_BATCH * 5


def test_replicas_share_keys_not_logs(cluster: list[Home]) -> None:
    names = {p.name for p in cluster[1].data_dir.iterdir()}
    assert {"server.pem", "server.key"} <= names
    assert not any(n.startswith("home.") for n in names)
    assert cluster[1].database == cluster[0].database
    assert home_harness.new_database() == ""  # no test-wide switch left behind


ALERTS = 40


async def test_notifications_survive_killed_instances(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The worker runs on the lease holder; 20 SIGKILLs later every alert's notification has
    reached the receiver, each under one idempotency key (a repeat, when a kill fell between a
    send and its record, carries the same key: docs/notifications.md)."""
    from tests.notify_support import ALWAYS_ROUTE, SmtpSink, WebhookSink, notify_toml

    try:
        haproxy.binary()
    except haproxy.HaproxyUnavailable as exc:
        pytest.skip(f"several home instances not tested: {exc}")
    rng = random.Random(7)
    smtp, hooks = SmtpSink(), WebhookSink()
    smtp.start()
    await hooks.start()
    config = tmp_path / "home.toml"
    config.write_text(
        notify_toml(
            tmp_path, smtp, hooks, ALWAYS_ROUTE, group_wait_s=0, backoff_first_s=1, max_attempts=10
        )
    )
    first = Home(
        tmp_path / "home1", tmp_path / "ca", database=fresh_database(postgres_server), config=config
    )
    first.prepare()
    cluster = [first] + [first.replica(tmp_path / f"home{i}") for i in (2, 3)]
    box = LightAppliance(new_identity())
    first.register(box.identity, site="Dental")
    for instance in cluster:
        instance.start()
    stop = asyncio.Event()
    try:
        with haproxy.running([h.port for h in cluster]) as balancer:
            tls = ssl.create_default_context(cafile=str(first.ca_file))

            async def alerts() -> None:
                timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    for n in range(ALERTS):
                        doc = box.batch(
                            [
                                (
                                    0,
                                    "alert",
                                    {
                                        "key": f"device.down:{n}",
                                        "id": n + 1,
                                        "state": "open",
                                        "severity": "major",
                                        "message": f"server {n} is down",
                                        "rule": "device.down",
                                    },
                                )
                            ],
                            ts=1.8e9 + n,
                        )
                        while True:  # a box's outbox: the same batch until acknowledged
                            try:
                                status, answer = await box.post(session, balancer.url, doc, tls)
                            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                                status, answer = 0, {}
                            if status == 200 and int(answer["acked"]["0"]) >= box.next_seq - 1:
                                break
                            await asyncio.sleep(RETRY_S)
                        await asyncio.sleep(0.3)

            sender = asyncio.create_task(alerts())
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                victim = rng.choice([h for h in cluster if h.proc is not None])
                victim.kill()
                await asyncio.sleep(rng.uniform(0.2, 0.8))
                await asyncio.to_thread(victim.start)
            await asyncio.wait_for(sender, timeout=120)
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline:
                keys = {h.headers.get("Idempotency-Key") for h in hooks.on("psa")}
                if len(keys) >= ALERTS:
                    break
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        for instance in cluster:
            with contextlib.suppress(Exception):
                instance.stop()
        await hooks.stop()
        smtp.stop()
    hits = hooks.on("psa")
    sent_keys = [h.headers.get("Idempotency-Key") for h in hits]
    assert len(set(sent_keys)) == ALERTS, (
        f"{len(set(sent_keys))} of {ALERTS} alerts reached the receiver"
    )
    mentioned = {
        n for n in range(ALERTS) if any(f"server {n} is down" in h.body.decode() for h in hits)
    }
    assert mentioned == set(range(ALERTS))
    repeats = len(sent_keys) - len(set(sent_keys))
    # A repeat needs a kill between a send and its record: at most one a kill.
    assert repeats <= KILLS, f"{repeats} repeats for {KILLS} kills"
