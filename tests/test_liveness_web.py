"""The status page shows the liveness evidence and which devices are watched for down, from
what polling really stores (store_result) over HTTP on loopback; the network page shows the
ICMP fix once."""

from __future__ import annotations

import html
import time
from pathlib import Path

import aiohttp

from core.status import StatusKey
from services.polling.results import CheckOutcome, PollResult
from services.polling.service import store_result
from tests.web_support import appliance, insert_device, serve


def _result(device_id: int, ip: str, kind: str, wall: float, **kw: object) -> PollResult:
    return PollResult(device_id, ip, ip, kind, wall, 0.0, **kw)  # type: ignore[arg-type]


async def test_device_pages_show_evidence_and_watch(tmp_path: Path) -> None:
    now = time.time()
    async with appliance(tmp_path) as ctx:
        ids: dict[str, int] = {}

        def seed(tx: object) -> None:
            for name, ip, kind, attrs in (
                ("File server", "198.18.0.40", "server", {}),
                ("Reception laptop", "198.18.0.60", "workstation", {}),
                ("Boss phone", "198.18.0.61", "phone", {"monitored": True}),
            ):
                ids[name] = insert_device(
                    tx, ip=ip, name=name, kind=kind, mac=f"52:54:00:00:00:{ip[-2:]}", now=now,
                    attrs=attrs,
                )  # fmt: skip

        await ctx.store.write(seed)
        server_up = _result(
            ids["File server"], "198.18.0.40", "server", now,
            reachable=True, readings=(), duration_s=0.1,
            checks=(
                CheckOutcome("icmp", False, "no echo reply to 3 requests"),
                CheckOutcome("arp", True),
                CheckOutcome("tcp:445", False, "connection refused", answered=True),
            ),
            answered_by=("arp", "tcp"), silent=("icmp",), last_answer_wall=now,
        )  # fmt: skip
        laptop_gone = _result(
            ids["Reception laptop"], "198.18.0.60", "workstation", now,
            reachable=False, readings=(), duration_s=1.0,
            checks=(CheckOutcome("arp", False, "no ARP reply within 1 s"),),
            silent=("arp",), last_answer_wall=now - 3600,
        )  # fmt: skip
        await ctx.store.write(lambda tx: store_result(tx, server_up, 0))
        await ctx.store.write(lambda tx: store_result(tx, laptop_gone, 3))
        async with serve(ctx) as base, aiohttp.ClientSession() as http:

            async def page(path: str) -> str:
                async with http.get(base + path) as r:
                    assert r.status == 200, path
                    return html.unescape(await r.text())

            listing = await page("/devices")
            overview = await page("/")
            server = await page(f"/devices/{ids['File server']}")
            laptop = await page(f"/devices/{ids['Reception laptop']}")
            phone = await page(f"/devices/{ids['Boss phone']}")
            assert "cannot open an ICMP socket" not in await page("/network")
            fix = "cannot open an ICMP socket: run outpost with CAP_NET_RAW"
            ctx.status.publish(StatusKey.POLLING_ICMP, fix)
            network = await page("/network")
    rows = {name: listing.split(name, 1)[1].split("</tr>", 1)[0] for name in ids}
    assert "watched" in rows["File server"] and "watched" in rows["Boss phone"]
    assert "watched" not in rows["Reception laptop"]
    # The laptop that left is "away", not "down": no "device down" on the overview either.
    assert ">Away<" in rows["Reception laptop"] and ">Down<" not in listing
    assert "1 away" in overview and "device down" not in overview
    assert "Answers by" in server and "ARP, TCP" in server
    assert "connection refused (the host answered: it is there)" in server
    assert "yes: an alert when it stops answering" in server
    assert "No answer by" in laptop and "ARP since" in laptop and "1 h ago" in laptop
    assert "no: comes and goes (left / returned events)" in laptop
    assert "yes: an alert when it stops answering" in phone  # marked monitored
    assert network.count(fix) == 1 and "judged by their other answers" in network
