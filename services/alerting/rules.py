"""Alert rules: from one device's poll result (and what was seen before) to conditions.

A rule never writes anything: it says, per alert key, which severity the condition has now
(None when clear). The engine turns changes into alert transitions. Level rules apply
hysteresis here: an alert at a threshold stays until the value is ``hysteresis_pct`` back
past it, so a disk at 79.9/80.1 % does not flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.settings.alerting import AlertingSettings
from core.vocabulary import Severity
from services.polling.liveness import duration_text, method_of, silence_text, spoken
from services.polling.results import PollResult
from services.polling.topology_results import PlacedDevice, TopologyUpdate
from services.store.records import Event


@dataclass(frozen=True)
class Condition:
    key: str  # what the alert is about: rule, device, instance
    rule: str
    device_id: int | None
    severity: Severity | None  # None: clear
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    hold: bool = False  # suppressed for now (dependency): neither open nor resolve


@dataclass
class DeviceMemory:
    """What the rules remember of a device between its polls."""

    missed: int = 0
    first_miss_mono: float | None = None
    uptime_s: float | None = None
    ever_up: set[str] = field(default_factory=set)  # interfaces seen up since start
    ever_open: set[str] = field(default_factory=set)  # TCP ports seen open since start
    away_since_wall: float | None = None  # a transient device left (presence), since then


def watched_for_down(result: PollResult, settings: AlertingSettings, is_gateway: bool) -> bool:
    """Does this device's going away raise a "device down" alert? The gateway always (every
    other device depends on it); then a technician's choice (``monitored = true`` or
    ``false`` in [[polling.devices]]), whatever the kind; else kinds in ``down_alert_kinds``
    (infrastructure). The rest (laptops, phones, media, iot, unknown) come and go: presence
    events, no alert."""
    if is_gateway:
        return True
    if result.monitored is not None:
        return result.monitored
    return result.kind in settings.down_alert_kinds


def presence(
    result: PollResult, memory: DeviceMemory, settings: AlertingSettings, watched: bool
) -> Event | None:
    """A "left"/"returned" presence event for a device not watched for down, or None.

    Call after :func:`evaluate` (which counts the misses). "left" when it has missed
    ``down_after_missed`` polls, with the evidence that went silent; "returned" at its next
    answer, with how long it was away (from its last answer to this one).
    """
    label = f"{result.name} ({result.ip})" if result.name != result.ip else result.ip
    if watched:
        memory.away_since_wall = None
        return None
    if result.reachable is False and memory.missed >= settings.down_after_missed:
        if memory.away_since_wall is not None:
            return None
        since = result.last_answer_wall
        memory.away_since_wall = since if since is not None else result.wall_s
        silence = silence_text(result.silent, since, result.wall_s)
        return Event(
            "presence.left",
            result.device_id,
            Severity.INFO,
            f"{label} left ({silence})",
            {
                "ip": result.ip,
                "kind": result.kind,
                "last_answer_ts": since,
                "silent": list(result.silent),
            },
        )
    if result.reachable and memory.away_since_wall is not None:
        away_s = max(0.0, result.wall_s - memory.away_since_wall)
        memory.away_since_wall = None
        return Event(
            "presence.returned",
            result.device_id,
            Severity.INFO,
            f"{label} returned after {duration_text(away_s)} away "
            f"(answered {spoken(result.answered_by)})",
            {
                "ip": result.ip,
                "kind": result.kind,
                "away_s": round(away_s, 1),
                "answered_by": list(result.answered_by),
            },
        )
    return None


@dataclass(frozen=True)
class FlagRule:
    """A fault a device reports as a yes/no reading (unit 0/1)."""

    rule: str
    bad_value: float  # the reading that means the fault is there
    severity: Severity
    text: str  # formatted with {label} (the device) and {inst} (the disk, array ...)
    per_instance: bool  # one alert per instance (each disk) or one per device


FLAG_RULES: Mapping[str, FlagRule] = {
    "ups.battery_replace": FlagRule(
        "ups.battery_replace", 1, Severity.MINOR, "{label}: the battery needs replacing", False
    ),
    "ups.selftest_ok": FlagRule(
        "ups.selftest", 0, Severity.MINOR, "{label}: the last battery self-test failed", False
    ),
    "disk.health_ok": FlagRule(
        "disk.failed", 0, Severity.MAJOR, "{label}: {inst} reports a failure", True
    ),
    "raid.ok": FlagRule(
        "raid.degraded", 0, Severity.MAJOR, "{label}: {inst} is degraded or crashed", True
    ),
}


def level_severity(
    value: float | None,
    current: str | None,
    steps: tuple[tuple[float, Severity], ...],
    hysteresis: float,
    higher_is_worse: bool = True,
) -> Severity | None:
    """Severity of a level against thresholds (worst first), with hysteresis on the way back."""
    if value is None:
        # Unknown: no change.
        return None if current is None else Severity.parse(current, Severity.WARNING)
    for threshold, severity in steps:
        held = current is not None and Severity.parse(current, Severity.WARNING) >= severity
        margin = hysteresis if held else 0.0
        if higher_is_worse and value >= threshold - margin:
            return severity
        if not higher_is_worse and value <= threshold + margin:
            return severity
    return None


def evaluate(
    result: PollResult,
    memory: DeviceMemory,
    settings: AlertingSettings,
    open_severity: Mapping[str, str],
    is_gateway: bool,
) -> list[Condition]:
    """Conditions of every rule for one poll result. ``open_severity``: key -> open severity."""
    out: list[Condition] = []
    dev = result.device_id
    label = f"{result.name} ({result.ip})" if result.name != result.ip else result.ip

    # ---- reachability
    if result.reachable is False:
        memory.missed += 1
        if memory.first_miss_mono is None:
            memory.first_miss_mono = result.mono_s
    elif result.reachable:
        memory.missed, memory.first_miss_mono = 0, None
    down = memory.missed >= settings.down_after_missed
    key = f"device.down:{dev}"
    watched = watched_for_down(result, settings, is_gateway)
    if (watched or key in open_severity) and (result.reachable or down):
        # Fewer misses than the threshold change nothing: an open "down" alert (from before a
        # restart, say) resolves only when the device answers again. An open one of a device
        # no longer watched still resolves when it answers.
        # The details of the methods that went silent (those that worked before); a check that
        # never worked (pings a firewall drops) is noise next to them.
        failed = [c for c in result.checks if not c.host_answered and c.error]
        relevant = [c for c in failed if method_of(c.check) in result.silent] or failed
        why = "; ".join(f"{c.check}: {c.error}" for c in relevant)
        severity: Severity = Severity.CRITICAL if is_gateway else Severity.MAJOR
        what = "the gateway (internet access of the site)" if is_gateway else label
        silence = silence_text(result.silent, result.last_answer_wall, result.wall_s)
        out.append(
            Condition(
                key,
                "device.down",
                dev,
                severity if down and watched else None,
                f"{what} is down: {silence} ({memory.missed} polls; {why})"
                if down
                else f"{label} answers again ({spoken(result.answered_by)})",
                {
                    "ip": result.ip,
                    "missed": memory.missed,
                    "silent": list(result.silent),
                    "answered_by": list(result.answered_by),
                    "last_answer_ts": result.last_answer_wall,
                },
            )
        )
    if not result.reachable:
        return out  # a down device's other rules keep their state until it answers

    # ---- ICMP quality
    loss, rtt = result.value("icmp.loss_pct"), result.value("icmp.rtt_ms")
    key = f"icmp.loss:{dev}"
    sev = level_severity(
        loss, open_severity.get(key), ((settings.loss_warning_pct, Severity.WARNING),), 5.0
    )
    if loss is not None and loss < 100:
        out.append(Condition(key, "icmp.loss", dev, sev, f"{label} loses {loss:.0f} % of pings"))
    key = f"icmp.latency:{dev}"
    sev = level_severity(
        rtt, open_severity.get(key), ((settings.rtt_warning_ms, Severity.WARNING),), 10.0
    )
    if rtt is not None:
        out.append(
            Condition(key, "icmp.latency", dev, sev, f"{label} answers pings in {rtt:.0f} ms")
        )

    # ---- reboot (sysUpTime went backwards)
    uptime = result.value("system.uptime_s")
    if uptime is not None:
        if memory.uptime_s is not None and uptime < memory.uptime_s:
            out.append(
                Condition(
                    f"device.rebooted:{dev}",
                    "device.rebooted",
                    dev,
                    Severity.WARNING,
                    f"{label} restarted (up for {uptime:.0f} s)",
                    {"uptime_s": uptime},
                )
            )
        memory.uptime_s = uptime

    for r in result.readings:
        inst = r.instance
        # ---- volumes
        if r.metric == "storage.used_pct":
            key = f"volume:{dev}:{inst}"
            sev = level_severity(
                r.value,
                open_severity.get(key),
                (
                    (settings.volume_major_pct, Severity.MAJOR),
                    (settings.volume_minor_pct, Severity.MINOR),
                ),
                settings.hysteresis_pct,
            )
            pct = "?" if r.value is None else f"{r.value:.0f}"
            out.append(Condition(key, "volume.full", dev, sev, f"{label}: {inst} is {pct} % full"))
        # ---- printer supplies: a level at/below the threshold is minor, empty is major
        elif r.metric == "supply.level_pct":
            key = f"supply.low:{dev}:{inst}"
            sev = level_severity(
                r.value,
                open_severity.get(key),
                ((settings.supply_minor_pct, Severity.MINOR),),
                settings.hysteresis_pct,
                higher_is_worse=False,
            )
            if r.value is not None:
                out.append(
                    Condition(
                        key,
                        "supply.low",
                        dev,
                        sev,
                        f"{label}: {inst} at {r.value:.0f} %",
                        {"level_pct": r.value},
                    )
                )
        elif r.metric == "supply.almost_empty" and r.value is not None:
            # The maker's own table says "almost empty" without a percentage (Ricoh's -100):
            # the same low-supply alert a level under the threshold raises.
            if result.value("supply.level_pct", inst) is None:
                out.append(
                    Condition(
                        f"supply.low:{dev}:{inst}",
                        "supply.low",
                        dev,
                        Severity.MINOR if r.value == 1 else None,
                        f"{label}: {inst} almost empty",
                    )
                )
        elif r.metric == "supply.empty" and r.value is not None:
            out.append(
                Condition(
                    f"supply.empty:{dev}:{inst}",
                    "supply.empty",
                    dev,
                    Severity.MAJOR if r.value == 1 else None,
                    f"{label}: {inst} is empty",
                )
            )
        elif r.metric in ("printer.jammed", "printer.door_open") and r.value is not None:
            what = "paper jam" if r.metric == "printer.jammed" else "a door is open"
            out.append(
                Condition(
                    f"{r.metric}:{dev}",
                    r.metric,
                    dev,
                    Severity.MINOR if r.value == 1 else None,
                    f"{label}: {what}",
                )
            )
        # ---- UPS
        elif r.metric == "ups.on_battery" and r.value is not None:
            charge = result.value("ups.charge_pct")
            runtime = result.value("ups.runtime_s")
            detail = ""
            if charge is not None:
                detail += f", battery {charge:.0f} %"
            if runtime is not None:
                detail += f", {runtime / 60:.0f} min left"
            out.append(
                Condition(
                    f"ups.on_battery:{dev}",
                    "ups.on_battery",
                    dev,
                    Severity.MAJOR if r.value == 1 else None,
                    f"{label} runs on battery (mains power lost){detail}",
                )
            )
        # ---- yes/no faults: the UPS battery, its self-test, a NAS's disks and RAID
        elif r.metric in FLAG_RULES and r.value is not None:
            flag = FLAG_RULES[r.metric]
            key = f"{flag.rule}:{dev}:{inst}" if flag.per_instance else f"{flag.rule}:{dev}"
            out.append(
                Condition(
                    key,
                    flag.rule,
                    dev,
                    flag.severity if r.value == flag.bad_value else None,
                    flag.text.format(label=label, inst=inst),
                )
            )
        # ---- TCP services: a port that answered before and now refuses or stays silent
        elif r.metric == "tcp.open" and r.value is not None:
            if r.value == 1:
                memory.ever_open.add(inst)
            if inst in memory.ever_open:
                why = next((c.error for c in result.checks if c.check == f"tcp:{inst}"), "")
                out.append(
                    Condition(
                        f"tcp.down:{dev}:{inst}",
                        "tcp.down",
                        dev,
                        Severity.MINOR if r.value == 0 else None,
                        f"{label}: the service on TCP port {inst} does not answer ({why})"
                        if r.value == 0
                        else f"{label}: TCP port {inst} answers again",
                    )
                )
        # ---- interfaces
        elif r.metric == "if.oper_up" and r.value is not None:
            if r.value == 1:
                memory.ever_up.add(inst)
            if result.kind in settings.interface_down_kinds and inst in memory.ever_up:
                admin = result.value("if.admin_up", inst)
                down = r.value == 0 and admin != 0
                out.append(
                    Condition(
                        f"if.down:{dev}:{inst}",
                        "if.down",
                        dev,
                        Severity.MINOR if down else None,
                        f"{label}: interface {inst} is down",
                    )
                )
        elif r.metric == "if.in_errors_ps" and r.value is not None:
            out_errors = result.value("if.out_errors_ps", inst) or 0.0
            rate = r.value + out_errors
            key = f"if.errors:{dev}:{inst}"
            sev = level_severity(
                rate, open_severity.get(key), ((settings.if_error_rate_ps, Severity.WARNING),), 0.0
            )
            out.append(
                Condition(
                    key,
                    "if.errors",
                    dev,
                    sev,
                    f"{label}: interface {inst} has {rate:.1f} errors/s",
                )
            )
    return out


# ---------------------------------------------------------------- where things plug in
# (services/polling/topology_service.py publishes a TopologyUpdate after each switch read)


def _speed_text(bps: float | None) -> str:
    if not bps:
        return "unknown speed"
    return f"{bps / 1e9:g} Gbit/s" if bps >= 1e9 else f"{bps / 1e6:g} Mbit/s"


def _behind_text(devices: list[PlacedDevice]) -> str:
    return ", ".join(d.label for d in devices)


def port_link_conditions(result: PollResult, where: TopologyUpdate | None) -> list[Condition]:
    """A switch port with a placed device behind it that loses link (if.oper_up 0 while
    admin up), from the switch's own poll: "sw-floor1 port g6 (desk 12) has no link: printer
    (198.18.0.30) was behind it". Minor; resolved when the link is back."""
    if where is None or not result.reachable:
        return []
    out = []
    for r in result.readings:
        if r.metric != "if.oper_up" or r.value is None:
            continue
        port = where.port_named(result.device_id, r.instance)
        if port is None or port.uplink:
            continue
        behind = [d for d in where.behind(result.device_id, port.if_index) if d.via == "fdb"]
        if not behind:
            continue
        admin = result.value("if.admin_up", r.instance)
        down = r.value == 0 and admin != 0
        out.append(
            Condition(
                f"port.down:{result.device_id}:{port.name}",
                "port.down",
                result.device_id,
                Severity.MINOR if down else None,
                f"{port.title} has no link: {_behind_text(behind)} was behind it"
                if down
                else f"{port.title} has link again ({_behind_text(behind)})",
                {"port": port.name, "label": port.label, "behind": [d.device_id for d in behind]},
            )
        )
    return out


def port_speed_conditions(
    update: TopologyUpdate, fastest: dict[tuple[int, int], float]
) -> list[Condition]:
    """A port with link running slower than the fastest it was seen at (gigabit down to
    100 Mbit/s: a damaged cable, a bad connector): warning, resolved when the speed is back.
    ``fastest``: (switch id, ifIndex) -> highest speed seen since start (bit/s), updated."""
    out = []
    for p in update.ports:
        if not p.oper_up or not p.speed_bps:
            continue
        key = (p.switch_id, p.if_index)
        top = max(fastest.get(key, 0.0), p.speed_bps)
        fastest[key] = top
        behind = update.behind(p.switch_id, p.if_index)
        who = f": {_behind_text(behind)} behind it" if behind and not p.uplink else ""
        slow = p.speed_bps < top
        out.append(
            Condition(
                f"port.speed:{p.switch_id}:{p.name}",
                "port.speed",
                p.switch_id,
                Severity.WARNING if slow else None,
                f"{p.title} runs at {_speed_text(p.speed_bps)}, was {_speed_text(top)}{who} "
                "(a damaged cable or connector?)"
                if slow
                else f"{p.title} runs at {_speed_text(p.speed_bps)} again",
                {"port": p.name, "speed_bps": p.speed_bps, "was_bps": top},
            )
        )
    return out


def annotate_where(
    conditions: list[Condition], result: PollResult, where: TopologyUpdate | None,
    link_up: dict[tuple[int, str], bool],
) -> list[Condition]:  # fmt: skip
    """Say where: a device's "down" names the port it was on and whether the port lost link
    (cable or device off) or kept it (the device hangs); an interface error alert of a switch
    port names the device behind it (a bad cable). ``link_up``: (switch id, port name) ->
    the port's link at the switch's latest poll."""
    if where is None:
        return conditions
    return [_where(c, result, where, link_up) for c in conditions]


def _where(
    c: Condition, result: PollResult, where: TopologyUpdate,
    link_up: dict[tuple[int, str], bool],
) -> Condition:  # fmt: skip
    if c.rule == "device.down" and c.severity is not None and c.device_id is not None:
        placed = where.where(c.device_id)
        port = where.port(placed.switch_id, placed.if_index) if placed else None
        if port is None:
            return c
        link = link_up.get((port.switch_id, port.name), port.oper_up)
        if link is False:
            how = "which lost link (cable unplugged or the device is off)"
        elif link:
            how = "which still has link (the device hangs or lost its address)"
        else:
            how = "link unknown"
        data = {**c.data, "switch_id": port.switch_id, "port": port.name,
                "port_label": port.label, "port_link": link}  # fmt: skip
        message = f"{c.message}; it was on {port.title}, {how}"
        return Condition(c.key, c.rule, c.device_id, c.severity, message, data, c.hold)
    if c.rule == "if.errors" and c.severity is not None and c.key.count(":") >= 2:
        port = where.port_named(result.device_id, c.key.split(":", 2)[2])
        behind = where.behind(port.switch_id, port.if_index) if port else []
        if port is None or not behind or port.uplink:
            return c
        message = f"{c.message}: {port.title}, {_behind_text(behind)} behind it (a bad cable?)"
        data = {**c.data, "port": port.name}
        return Condition(c.key, c.rule, c.device_id, c.severity, message, data, c.hold)
    return c


def remember_links(result: PollResult, link_up: dict[tuple[int, str], bool]) -> None:
    """Each interface's link at this poll, for :func:`annotate_where` (switch polls)."""
    for r in result.readings:
        if r.metric == "if.oper_up" and r.value is not None:
            link_up[(result.device_id, r.instance)] = r.value == 1
