"""Home refuses unsigned, badly signed, replayed and unknown requests and changes nothing;
the appliance refuses a home whose certificate is not from the pinned CA."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.wire.keys import H_SIGNATURE, Identity
from core.wire.protocol import INGEST_PATH, encode
from home.ca import init_ca
from provisioning.identity import load_or_create
from services.store import Measurement, insert_measurements
from tests.uplink_support import (
    Home,
    appliance_config,
    identity_for,
    running_appliance,
    running_home,
    wait_for,
)

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


def _batch(identity: Identity, seq: int, value: float) -> dict[str, Any]:
    return {
        "v": 1,
        "appliance": identity.appliance_id,
        "stream": "teststream",
        "records": [
            {
                "seq": seq,
                "lane": 1,
                "kind": "measurement",
                "ts": 1.8e9,
                "synced": True,
                "body": {"metric": "m", "value": value},
            }
        ],
    }


async def _post(home: Home, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(home.ca_file))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            home.url + INGEST_PATH,
            data=body,
            headers={"Content-Encoding": "gzip", **headers},
            ssl=context,
        ) as response,
    ):
        return response.status, await response.json()


def _state(home: Home) -> tuple[Any, ...]:
    return (
        home.rows("SELECT COUNT(*) FROM records")[0][0],
        home.rows("SELECT * FROM streams"),
        home.rows("SELECT last_seen, records FROM appliances"),
    )


async def test_home_refuses_bad_missing_replayed_and_unknown(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        good = load_or_create(tmp_path / "good")
        stranger = load_or_create(tmp_path / "stranger")
        home.register(good)
        body = encode(_batch(good, 1, 1.0))
        headers = good.sign_headers("POST", INGEST_PATH, body)

        # The genuine request is accepted once...
        status, answer = await _post(home, body, headers)
        assert status == 200 and answer["acked"] == {"0": 0, "1": 1}
        before = _state(home)

        # ...and refused when replayed byte for byte.
        status, answer = await _post(home, body, headers)
        assert status == 409 and "replayed" in answer["error"]

        # Missing signature.
        unsigned = {k: v for k, v in headers.items() if k != H_SIGNATURE}
        assert (await _post(home, body, unsigned))[0] == 401

        # A signature over another body (tampered records).
        other = encode(_batch(good, 2, 666.0))
        assert (await _post(home, other, headers))[0] == 401

        # Signed by a key that is not the registered one, claiming the registered id.
        forged = stranger.sign_headers("POST", INGEST_PATH, other)
        forged["X-Outpost-Appliance"] = good.appliance_id
        assert (await _post(home, other, forged))[0] == 401

        # A well-signed request from an appliance nobody registered.
        status, answer = await _post(home, other, stranger.sign_headers("POST", INGEST_PATH, other))
        assert status == 403 and "unknown appliance" in answer["error"]

        assert _state(home) == before  # nothing changed


async def test_appliance_refuses_home_with_certificate_from_another_ca(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        # The appliance pins a different CA than the one that issued home's certificate.
        init_ca(tmp_path / "other-ca")
        config, _ = appliance_config(tmp_path, home, ca_file=str(tmp_path / "other-ca" / "ca.pem"))
        identity = identity_for(config)
        home.register(identity)
        async with running_appliance(config) as (ctx, _sup):
            await ctx.store.write(lambda tx: insert_measurements(tx, [Measurement(None, "m", 1.0)]))
            await wait_for(
                lambda: ctx.status.snapshot().get("uplink.state") == "failing",
                what="uplink.state failing",
            )
            pending = await ctx.store.query("SELECT COUNT(*) AS n FROM outbox")
        assert pending == [{"n": 1}]  # kept for when the right home answers
        assert home.rows("SELECT COUNT(*) FROM records")[0][0] == 0


def test_identity_key_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "id")
    again = load_or_create(tmp_path / "id")
    assert first.appliance_id == again.appliance_id and first.appliance_id.startswith("op-")
    mode = (tmp_path / "id" / "device.key").stat().st_mode & 0o777
    assert mode == 0o600
