"""Home in production: the load balancer's health check, Prometheus metrics, `migrate`."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from simsite.harness.home import running_home
from simsite.harness.processes import HOME
from simsite.harness.signed_client import LightAppliance, new_identity

pytestmark = pytest.mark.usefixtures("home_backend")


async def _get(session: aiohttp.ClientSession, url: str, tls: ssl.SSLContext) -> tuple[int, str]:
    async with session.get(url, ssl=tls) as answer:
        return answer.status, await answer.text()


async def test_health_metrics_and_ingest_counters(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        box = LightAppliance(new_identity())
        home.register(box.identity)
        tls = ssl.create_default_context(cafile=str(home.ca_file))
        async with aiohttp.ClientSession() as session:
            status, text = await _get(session, home.url + "/healthz", tls)
            assert status == 200, text
            health = json.loads(text)
            assert health["ok"] is True and health["database"] == (
                "postgresql" if home.database else "sqlite"
            )
            doc = box.batch(
                [(1, "measurement", {"metric": "m", "value": float(i)}) for i in range(5)], ts=1.8e9
            )
            assert (await box.post(session, home.url, doc, tls))[0] == 200
            assert (await box.post(session, home.url, doc, tls))[1]["duplicates"] == 5  # resent
            status, text = await _get(session, home.url + "/metrics", tls)
        assert status == 200
        metrics = dict(
            line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
        assert metrics["outpost_home_ingest_records_total"] == "5"
        assert metrics["outpost_home_ingest_duplicates_total"] == "5"
        assert metrics["outpost_home_ingest_batches_total"] == "2"
        assert metrics['outpost_home_request_seconds_count{endpoint="ingest"}'] == "2"
        assert metrics["outpost_home_up"] == "1"
        assert int(metrics["outpost_home_schema_version"]) >= 4
        assert "postgresql://" not in text and "password" not in text


def test_migrate_command_reports_the_version(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        home.stop()
        done = subprocess.run(
            [*HOME, "migrate", *home.where()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["schema"] >= 4 and answer["applied"] == []  # home's start migrated it
