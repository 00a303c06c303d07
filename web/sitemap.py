"""The site map's layout: positions of every box and line, drawn as SVG by sitemap.svg.

Layout (top to bottom): the gateway; a row of switches (each one a column, children after
their parent, a line between two switches labelled with the ports that face each other);
under each switch, its access ports in port order, each port's name (and label, "desk 12")
beside the devices learned on it, one box per device linking to its page and coloured by its
state. Devices no switch has placed get a column of their own. All in SVG units (px); one
device is one 24 px row and a switch with more than ``MAX_ROWS`` rows gets more columns, so
100 devices stay within about 900 px of height (the page scrolls sideways).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COLUMN_W = 290
BOX_W = 270
ROW_H = 24
BOX_H = 20
PORT_GAP = 6
MARGIN = 16
TOP_Y = MARGIN
SWITCH_Y = 96
SWITCH_H = 40
NAME_CHARS = 20
PORT_W = 52  # the port's name (and label) left of its devices
MAX_ROWS = 24  # device rows per sub-column: a switch with more gets more columns


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    title: str
    sub: str  # a second, muted line (address, model) or ""
    href: str
    state: str  # up, down, away, unknown
    cls: str  # "gateway", "switch", "device"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    cls: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    cls: str = ""


@dataclass
class SiteMap:
    width: float = 0.0
    height: float = 0.0
    boxes: list[Box] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    placed: int = 0
    unplaced: int = 0


def _cut(text: str, chars: int = NAME_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _title(dev: Mapping[str, Any]) -> str:
    return _cut(str(dev.get("name") or dev.get("ip") or f"device {dev['id']}"))


def _sub(dev: Mapping[str, Any]) -> str:
    """The address under or beside the name, unless the name is the address."""
    ip = str(dev.get("ip") or "")
    return "" if not dev.get("name") or dev.get("name") == ip else ip


def layout(
    devices: Sequence[Mapping[str, Any]],
    placements: Sequence[Mapping[str, Any]],
    switches: set[int],
    gateway_ip: str = "",
) -> SiteMap:
    """``devices``: rows with id, name, ip, kind, state (web.data.devices); ``placements``:
    web.topology_data.placements; ``switches``: ids of devices whose tables were read."""
    by_id = {int(d["id"]): d for d in devices}
    where = {int(p["device_id"]): p for p in placements}
    gateway = next((d for d in devices if gateway_ip and d.get("ip") == gateway_ip), None)
    if gateway is None:
        gateway = next((d for d in devices if d.get("kind") == "router"), None)
    gw_id = int(gateway["id"]) if gateway else None
    # Switch columns: a tree from the switch the gateway plugs into, children after their
    # parent. Two switches are linked when one is placed on the other's port (LLDP or FDB);
    # each says so from its own side, so the links are taken both ways.
    read = sorted((s for s in switches if s in by_id), key=lambda s: _title(by_id[s]).lower())
    links: dict[int, dict[int, str]] = {s: {} for s in read}
    for s in read:
        p = where.get(s)
        if p is not None and int(p["switch_id"]) in links and int(p["switch_id"]) != s:
            other = int(p["switch_id"])
            text = f"{_title(by_id[other])} {p['port']}"
            links[s].setdefault(other, text)
            links[other].setdefault(s, text)
    root_of_gw = where.get(gw_id) if gw_id is not None else None
    roots = (
        [int(root_of_gw["switch_id"])]
        if root_of_gw and int(root_of_gw["switch_id"]) in links
        else []
    )
    order: list[int] = []
    parent: dict[int, tuple[int, str]] = {}

    def visit(s: int) -> None:
        order.append(s)
        for child in sorted(links[s], key=lambda c: _title(by_id[c]).lower()):
            if child not in order and child not in parent:
                parent[child] = (s, links[s][child])
                visit(child)

    for s in roots + read:
        if s not in order:
            visit(s)
    out = SiteMap()
    shown: set[int] = set(order) | ({gw_id} if gw_id is not None else set())
    # Each switch's access ports (groups of devices), cut into sub-columns of MAX_ROWS rows.
    columns: dict[int, list[list[list[Mapping[str, Any]]]]] = {}
    for s in order:
        groups: dict[int, list[Mapping[str, Any]]] = {}
        for dev_id, p in where.items():
            if int(p["switch_id"]) == s and dev_id in by_id and dev_id not in shown:
                groups.setdefault(int(p["if_index"]), []).append(p)
        cols: list[list[list[Mapping[str, Any]]]] = [[]]
        rows = 0
        for if_index in sorted(groups):
            members = sorted(groups[if_index], key=lambda p: _title(by_id[int(p["device_id"])]))
            if rows and rows + len(members) > MAX_ROWS:
                cols.append([])
                rows = 0
            cols[-1].append(members)
            rows += len(members)
        columns[s] = cols
    col_x: dict[int, float] = {}
    x = float(MARGIN)
    for s in order:
        col_x[s] = x
        x += COLUMN_W * max(1, len(columns[s]))
    rest_x = x
    bottoms = [SWITCH_Y + SWITCH_H]
    for s in order:
        d = by_id[s]
        out.boxes.append(
            Box(
                col_x[s],
                SWITCH_Y,
                BOX_W,
                SWITCH_H,
                _title(d),
                str(d.get("ip") or ""),
                f"/devices/{s}",
                str(d.get("state") or "unknown"),
                "switch",
            )
        )
    # Between switches: a bus above the switch row, from the parent's box down into the
    # child's, labelled with the parent's port the child is learned on.
    for n, (child, (par, text)) in enumerate(sorted(parent.items(), key=lambda c: col_x[c[0]])):
        bus_y = SWITCH_Y - 10 - 6 * (n % 3)  # several buses do not draw over one another
        x1 = col_x[par] + BOX_W - 24 - 8 * (n % 3)
        x2 = col_x[child] + BOX_W / 2
        out.lines.append(Line(x1, SWITCH_Y, x1, bus_y, "", "trunk"))
        out.lines.append(Line(x1, bus_y, x2, bus_y, "", "trunk"))
        out.lines.append(Line(x2, bus_y, x2, SWITCH_Y, "", "trunk"))
        out.texts.append(Text(x2 + 6, bus_y - 4, text, "link"))
    # The gateway above the switch it plugs into (or the first switch).
    if gateway is not None:
        gp = where.get(gw_id) if gw_id is not None else None
        below = int(gp["switch_id"]) if gp and int(gp["switch_id"]) in col_x else None
        gx = col_x[below] if below is not None else MARGIN
        out.boxes.append(
            Box(
                gx,
                TOP_Y,
                BOX_W,
                SWITCH_H,
                _title(gateway),
                "gateway · " + str(gateway.get("ip") or ""),
                f"/devices/{gw_id}",
                str(gateway.get("state") or "unknown"),
                "gateway",
            )
        )
        if below is not None and gp is not None:
            cx = gx + BOX_W / 2
            out.lines.append(Line(cx, TOP_Y + SWITCH_H, cx, SWITCH_Y, str(gp["port"]), "trunk"))
    # Access ports and their devices under each switch: the port's name beside its first
    # device, a trunk line down each sub-column.
    top = SWITCH_Y + SWITCH_H
    for s in order:
        for k, col in enumerate(columns[s]):
            cx = col_x[s] + k * COLUMN_W
            trunk_x = cx + 8
            y = top + PORT_GAP
            last_y = None
            for members in col:
                head = members[0]
                label = head["label"] if head["label"] and head["label"] != head["port"] else ""
                for i, p in enumerate(members):
                    dev_id = int(p["device_id"])
                    d = by_id[dev_id]
                    if i == 0:
                        out.lines.append(
                            Line(trunk_x, y + BOX_H / 2, cx + PORT_W - 2, y + BOX_H / 2, "", "tick")
                        )
                        out.texts.append(Text(trunk_x + 4, y + 8, _cut(str(p["port"]), 6), "port"))
                        if label:
                            out.texts.append(Text(trunk_x + 4, y + 19, _cut(label, 7), "label"))
                        last_y = y + BOX_H / 2
                    out.boxes.append(
                        Box(
                            cx + PORT_W,
                            y,
                            BOX_W - PORT_W,
                            BOX_H,
                            _title(d),
                            _sub(d),
                            f"/devices/{dev_id}",
                            str(d.get("state") or "unknown"),
                            "device",
                        )
                    )
                    shown.add(dev_id)
                    out.placed += 1
                    y += ROW_H
                y += PORT_GAP
            if last_y is not None:
                start = top if k == 0 else top + PORT_GAP / 2
                if k:
                    out.lines.append(Line(col_x[s] + 8, start, trunk_x, start, "", "tick"))
                out.lines.append(Line(trunk_x, start, trunk_x, last_y, "", "tick"))
            bottoms.append(y)
    # Everything no switch placed.
    rest = sorted((d for i, d in by_id.items() if i not in shown), key=lambda d: _title(d).lower())
    if rest:
        y = SWITCH_Y + 14
        out.texts.append(Text(rest_x, y, "Not placed on a switch port", "port"))
        y += 8
        for n, d in enumerate(rest):
            cx = rest_x + (n // MAX_ROWS) * COLUMN_W
            ry = y + (n % MAX_ROWS) * ROW_H
            out.boxes.append(
                Box(
                    cx,
                    ry,
                    BOX_W - PORT_W,
                    BOX_H,
                    _title(d),
                    _sub(d),
                    f"/devices/{d['id']}",
                    str(d.get("state") or "unknown"),
                    "device",
                )
            )
            out.unplaced += 1
            bottoms.append(ry + ROW_H)
        rest_x += COLUMN_W * ((len(rest) - 1) // MAX_ROWS + 1)
    out.width = rest_x + MARGIN
    out.height = max(bottoms) + MARGIN
    return out
