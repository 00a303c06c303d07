"""The whole appliance on the simulated site, its status page in headless Chromium.

Discovery, polling, alerting and the front panel run for real inside the site's appliance
namespace; the page shows what they found, updates live when a host is unplugged, and shows
a hostile device's mDNS name and SNMP sysName as text. Screenshots: test-artifacts/screenshots/.
"""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simsite.corpus import corpus_site
from simsite.model import MdnsService, SimDevice
from simsite.ouis import mac_for
from simsite.site import Site
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.conftest import CORPUS, REPO, needs_root
from tests.web_support import unix_proxy

KEEP = {"dsm", "brother", "apc-smt750x-nmc2", "ciscosb-cbs250-24p-4x-v3", "linux"}
HOSTILE_SYSNAME = "<script>window.__xss=1</script>"
HOSTILE_DESCR = "<img src=x onerror=window.__xss=2>Evil printer"
HOSTILE_MDNS = "<svg onload=window.__xss=3>lobby"
INTERVAL_S = 3.0


def _hostile(tmp: Path) -> SimDevice:
    rec = tmp / "hostile.snmprec"
    rec.write_text(
        f"1.3.6.1.2.1.1.1.0|4|{HOSTILE_DESCR}\n1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.1\n"
        f"1.3.6.1.2.1.1.3.0|67|12345\n1.3.6.1.2.1.1.5.0|4|{HOSTILE_SYSNAME}\n"
    )
    return SimDevice(
        name="hostile", ip="198.18.0.200", mac=mac_for("unknown", "hostile"), vendor="Unknown",
        role="iot", snmprec=rec, mdns=(MdnsService("_http._tcp", HOSTILE_MDNS, 80),),
    )  # fmt: skip


@dataclass
class Running:
    site: Site
    db: Path
    sock: str
    log: Path
    proc: subprocess.Popen[bytes]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def wait(self, what: str, probe: Any, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not probe():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within_s} s")
            time.sleep(0.3)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if not CORPUS.is_dir():
        pytest.skip("../shared/snmp-corpus is not present")
    tmp = tmp_path_factory.mktemp("website")
    spec = corpus_site(CORPUS)
    devices = (*(d for d in spec.devices if d.name in KEEP), _hostile(tmp))
    spec = dataclasses.replace(spec, devices=devices)
    db, sock, log, config = tmp / "outpost.db", str(tmp / "web.sock"), tmp / "app.log", tmp / "c"
    config.write_text(
        f'[site]\nname = "Harbour Dental (simulated)"\n'
        f'[store]\npath = "{db}"\n[provisioning]\nidentity_dir = "{tmp / "identity"}"\n'
        f'[web]\nunix_socket = "{sock}"\n'
        f'[discovery]\nsubnets = ["198.18.0.0/24"]\nsweep_interval_s = 3.0\n'
        f"[polling]\ninterval_s = {INTERVAL_S}\nicmp_count = 2\nicmp_spacing_ms = 100\n"
        "icmp_timeout_s = 0.5\ntcp_timeout_s = 0.5\nsnmp_timeout_s = 0.5\n"
        '[alerting]\ngateway_ip = "198.18.0.1"\n'
    )
    with Site(spec) as site, log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        run = Running(site, db, sock, log, proc)
        try:
            run.wait(
                "the site discovered and polled",
                lambda: (
                    len(run.query("SELECT 1 FROM poll_state WHERE reachable = 1")) >= 6
                    and run.query("SELECT 1 FROM devices WHERE name LIKE '%script%'")
                ),
                90,
            )
            yield run
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(log.read_text()[-2000:])


@needs_root
async def test_site_pages_with_real_discovery_and_polling(running: Running) -> None:
    nas = running.query("SELECT id FROM devices WHERE ip = ?", (running.site.ip_of("dsm"),))
    async with unix_proxy(running.sock) as base, browser() as b:
        page = await b.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        seen = watch(page)
        await page.goto(base + "/")
        total = int(await page.inner_text("#devices-total"))
        assert total >= 7  # gateway, five corpus devices, the hostile one
        assert await page.inner_text("#panel-state")  # the front panel (sim backend) runs
        await screenshot(page, "site-overview")
        await page.goto(base + "/devices")
        assert await page.locator("table.devices tbody tr").count() == total
        assert await page.locator(".state[data-state=up]").count() >= 6
        await screenshot(page, "site-devices")
        assert nas, "the NAS was not discovered"
        await page.goto(base + f"/devices/{nas[0][0]}")
        await page.wait_for_load_state("networkidle")
        text = await page.inner_text("main")
        assert "Why we think it is a nas" in text and "Storage" in text
        await screenshot(page, "site-device-nas")
        await page.goto(base + "/network")
        assert "198.18.0.2/24" in await page.inner_text("main")
        assert "198.18.0.1" in await page.inner_text("main")
        await screenshot(page, "site-network")
        assert seen.errors == []


@needs_root
async def test_site_hostile_names_are_text(running: Running) -> None:
    [(did,)] = running.query("SELECT id FROM devices WHERE ip = '198.18.0.200'")
    async with unix_proxy(running.sock) as base, browser() as b:
        page = await b.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        for path in ("/", "/devices", f"/devices/{did}", "/alerts"):
            await page.goto(base + path)
            await page.wait_for_load_state("networkidle")
            assert await page.evaluate("typeof window.__xss") == "undefined", path
            assert await page.locator("main script, main img[src=x], main svg[onload]").count() == 0
        await page.goto(base + f"/devices/{did}")
        text = await page.inner_text("main")
        assert HOSTILE_SYSNAME in text  # discovery's name for it: the SNMP sysName, as text
        assert "Evil printer" in text
        assert HOSTILE_MDNS in text  # the mDNS instance name, as text
        await screenshot(page, "site-hostile-device")
        assert dialogs == []


@needs_root
async def test_site_live_update_when_a_host_is_unplugged(running: Running) -> None:
    [(did,)] = running.query("SELECT id FROM devices WHERE ip = ?", (running.site.ip_of("linux"),))
    async with unix_proxy(running.sock) as base, browser() as b:
        page = await b.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        await page.goto(base + "/devices?sort=state")
        await wait_js(page, "document.getElementById('live-state').textContent === 'Live'")
        row = f"a[href='/devices/{did}']"
        assert await page.locator(f"tr:has({row}) .state").get_attribute("data-state") == "up"
        await page.evaluate("window.__sameDocument = true")
        started = time.monotonic()
        running.site.device_down("linux")
        try:
            await wait_js(
                page,
                f"document.querySelector(\"tr:has({row}) .state\")?.dataset.state === 'down'",
                within_s=8 * INTERVAL_S,
            )
            took = time.monotonic() - started
            print(f"page showed the host down {took:.1f} s after it was unplugged")
            assert await page.evaluate("window.__sameDocument") is True
            await screenshot(page, "site-devices-host-down")
        finally:
            running.site.device_up("linux")
