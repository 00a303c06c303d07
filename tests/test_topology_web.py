"""Where things plug in, on the status page, in headless Chromium on loopback (no root).

An office of 100 devices behind three switches (a core switch under the gateway, two floor
switches under it, each announcing the other by LLDP) is placed by the real placement code
(services.polling.placement) and stored by the topology service's own writer, then the pages
are read in Chromium: the device page says "connected to sw-floor1 port g12 "desk 12" (1 Gb/s,
full duplex, VLAN 10)", the switch page lists each port with what is behind it, and the site
map (SVG drawn on the server) links every device to its page, with no two boxes overlapping.
Screenshots go to test-artifacts/screenshots/ (topology-*.png).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from services.polling.placement import KnownDevice, SwitchView, place
from services.polling.topology import FdbEntry, Neighbour, Port, SwitchTables
from services.polling.topology_results import PortSnapshot, TopologyUpdate
from services.polling.topology_service import store_topology
from tests.browser_support import browser, screenshot, watch
from tests.web_support import appliance, insert_device, serve
from web.sitemap import layout

DESKTOP = {"width": 1280, "height": 900}
GIG = 1e9
LABELS = {("sw-floor1", 12): "desk 12", ("sw-floor1", 3): "reception"}


def _mac(n: int) -> str:
    return f"00:16:3e:00:{n // 256:02x}:{n % 256:02x}"


def _port(i: int, up: bool = True, speed: float = GIG, errors: int = 0) -> Port:
    return Port(i, f"g{i}", f"Port {i}", "", 6, speed if up else 0.0, True, up,
                "full" if up else "unknown", 10, errors, 0, i)  # fmt: skip


def _office() -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """100 devices: (name, kind, ip, state) and which switch port (by number) each is on."""
    devices: list[dict[str, Any]] = [
        {"name": "gw-office", "kind": "router", "n": 1},
        {"name": "sw-core", "kind": "switch", "n": 2},
        {"name": "sw-floor1", "kind": "switch", "n": 3},
        {"name": "sw-floor2", "kind": "switch", "n": 4},
    ]
    kinds = ["workstation"] * 6 + ["phone", "printer", "camera", "iot"]
    for i in range(5, 101):
        kind = "server" if i < 13 else kinds[i % len(kinds)]
        name = {"server": "srv", "workstation": "pc", "phone": "phone", "printer": "printer",
                "camera": "cam", "iot": "sensor"}[kind]  # fmt: skip
        devices.append({"name": f"{name}-{i:03d}", "kind": kind, "n": i})
    return devices, {}


async def _seed(ctx: Any) -> dict[str, int]:
    now = time.time()
    devices, _ = _office()
    ids: dict[str, int] = {}

    def write(tx: Any) -> None:
        for d in devices:
            n = d["n"]
            ids[d["name"]] = insert_device(tx, ip=f"198.18.0.{n}", name=d["name"], kind=d["kind"],
                                           mac=_mac(n), now=now)  # fmt: skip
            reachable = 0 if n in (17, 58) else 1
            tx.conn.execute(
                "INSERT INTO poll_state (device_id, ip, reachable, missed, last_poll_ts,"
                " last_ok_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (ids[d["name"]], f"198.18.0.{n}", reachable, 2 - 2 * reachable, now, now),
            )

    await ctx.store.write(write)
    # Who is learned where: servers on the core; the rest split over the floors, two per
    # port on a few ports (a phone with a PC behind it); 90-100 on Wi-Fi (placed nowhere).
    core: dict[int, list[int]] = {1: [1], 2: [3], 3: [4]}
    floor1: dict[int, list[int]] = {1: [2]}
    floor2: dict[int, list[int]] = {1: [2]}
    for n in range(5, 13):
        core[n - 1] = [n]
    next_port = {1: 2, 2: 2}
    for n in range(13, 90):
        f = 1 if n % 2 else 2
        floor = floor1 if f == 1 else floor2
        if n % 7 == 0 and next_port[f] > 2:
            floor[next_port[f] - 1].append(n)  # shares the previous port (phone + PC)
        else:
            floor[next_port[f]] = [n]
            next_port[f] += 1
    # Uplinks learn everything behind them.
    core[2] += [n for ns in floor1.values() for n in ns if n not in (2,)]
    core[3] += [n for ns in floor2.values() for n in ns if n not in (2,)]
    for floor in (floor1, floor2):
        there = {n for ns in floor.values() for n in ns}
        floor[1] += [n for n in range(1, 90) if n not in there]

    def tables(learned: dict[int, list[int]], ports: int, neighbours: tuple[Neighbour, ...],
               down: tuple[int, ...] = ()) -> SwitchTables:  # fmt: skip
        fdb = tuple(FdbEntry(_mac(n), p, p, 10) for p, ns in learned.items() for n in ns)
        plist = tuple(_port(i, i in learned and i not in down, GIG if i != 7 else 1e8,
                            errors=412 if i == 9 else 0) for i in range(1, ports + 1))  # fmt: skip
        return SwitchTables(plist, fdb, neighbours)

    def lldp(port: int, name: str, n: int, caps: tuple[str, ...]) -> Neighbour:
        return Neighbour("lldp", port, f"g{port}", name, "g1", "", _mac(n), "", "", "", caps)

    views = [
        SwitchView(ids["sw-core"], "sw-core", "198.18.0.2", _mac(2), tables(core, 24, (
            lldp(1, "gw-office", 1, ("router",)), lldp(2, "sw-floor1", 3, ("bridge",)),
            lldp(3, "sw-floor2", 4, ("bridge",))))),
        SwitchView(ids["sw-floor1"], "sw-floor1", "198.18.0.3", _mac(3),
                   tables(floor1, 48, (lldp(1, "sw-core", 2, ("bridge",)),))),
        SwitchView(ids["sw-floor2"], "sw-floor2", "198.18.0.4", _mac(4),
                   tables(floor2, 48, (lldp(1, "sw-core", 2, ("bridge",)),), down=(5,))),
    ]  # fmt: skip
    known = [KnownDevice(ids[d["name"]], _mac(d["n"]), f"198.18.0.{d['n']}", d["name"], d["kind"])
             for d in devices]  # fmt: skip
    topo = place(views, known)
    snapshot = TopologyUpdate(
        tuple(
            PortSnapshot(v.device_id, v.name, p.if_index, p.name,
                         LABELS.get((v.name, p.if_index), ""), p.speed_bps, p.duplex, p.oper_up,
                         p.admin_up, False)
            for v in views for p in v.tables.ports
        ),
        (),
        now,
    )  # fmt: skip
    await ctx.store.write(lambda tx: store_topology(tx, topo, views, snapshot, {}, {}, now))
    ids["placed"] = len(topo.placements)
    return ids


async def test_pages_say_where_each_device_plugs_in(tmp_path: Path) -> None:
    async with appliance(tmp_path) as ctx:
        ids = await _seed(ctx)
        async with serve(ctx) as base, browser() as b:
            page = await b.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
            seen = watch(page)
            # A PC on a named port.
            row = await ctx.store.read(
                lambda c: c.execute(
                    "SELECT d.name FROM topology_placements p JOIN devices d ON d.id = p.device_id"
                    " WHERE p.switch_id = ? AND p.port_name = 'g12'",
                    (ids["sw-floor1"],),
                ).fetchone()
            )
            pc = str(row[0])
            await page.goto(f"{base}/devices/{ids[pc]}")
            text = await page.inner_text("#connected-to")
            assert text.startswith("sw-floor1 port g12 “desk 12” (1 Gb/s, full duplex, VLAN 10)")
            await screenshot(page, "topology-device-connected")
            # The switch page: every port, what is behind it.
            await page.goto(f"{base}/devices/{ids['sw-floor1']}")
            rows = page.locator("table.ports tbody tr")
            assert await rows.count() == 48
            g12 = await rows.nth(11).inner_text()
            assert "desk 12" in g12 and pc in g12 and "1 Gb/s full" in g12
            g1 = await rows.nth(0).inner_text()
            assert "uplink: LLDP neighbour sw-core (bridge)" in g1
            shared = [await rows.nth(i).inner_text() for i in range(48)]
            assert any("an unmanaged switch or a phone with a PC" in r for r in shared)
            assert any("no link" in r for r in shared)
            await screenshot(page, "topology-switch-ports")
            # The core switch: a 100 Mb/s port and one with errors.
            await page.goto(f"{base}/devices/{ids['sw-core']}")
            core = await page.inner_text("table.ports")
            assert "100 Mb/s full" in core and "412" in core
            # The site map: one link per device, each to its page, no overlap.
            await page.set_viewport_size({"width": 1920, "height": 1000})
            await page.goto(f"{base}/map")
            links = await page.eval_on_selector_all(
                "svg.sitemap a", "as => as.map(a => a.getAttribute('href'))"
            )
            assert len(links) == 100 and len(set(links)) == 100
            assert all(h.startswith("/devices/") for h in links)
            await screenshot(page, "topology-site-map")
            await page.click(f"svg.sitemap a[href='/devices/{ids['printer-017']}']")
            await page.wait_for_url(f"**/devices/{ids['printer-017']}")
            assert await page.inner_text("#device-name") == "printer-017"
            svg = await page.request.get(f"{base}/map.svg")
            assert svg.headers["content-type"].startswith("image/svg+xml")
            assert seen.errors == []


def test_the_map_of_100_devices_has_no_overlapping_boxes() -> None:
    devices = [{"id": i, "name": f"host-{i}", "ip": f"10.0.0.{i}", "kind": "workstation",
                "state": "up"} for i in range(1, 101)]  # fmt: skip
    devices[0]["kind"] = "router"
    placements = [
        {"device_id": i, "switch_id": 2 + (i % 3 == 0), "if_index": i // 2, "port": f"g{i // 2}",
         "label": "", "via": "fdb", "uplink": 0, "speed_bps": GIG}
        for i in range(4, 95)
    ]  # fmt: skip
    placements.append({"device_id": 3, "switch_id": 2, "if_index": 1, "port": "g1", "label": "",
                       "via": "lldp", "uplink": 1, "speed_bps": GIG})  # fmt: skip
    m = layout(devices, placements, {2, 3}, "10.0.0.1")
    assert m.placed + m.unplaced + 3 == 100
    boxes = m.boxes
    assert len(boxes) == 100
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + a.w <= m.width and a.y >= 0 and a.y + a.h <= m.height
        for b in boxes[i + 1 :]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, (a, b)
    # Readable: boxes at least 20 px tall, at most 24 rows a column (then the next column).
    assert min(b.h for b in boxes) >= 20 and m.height < 900
