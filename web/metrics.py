"""The appliance's own health in Prometheus text format (/metrics).

Request timings are kept in fixed histogram buckets (no per-request memory). Numeric facts that
services publish to ``ctx.status`` (poll durations, queue depths) are exported as
``outpost_status{key="..."}`` so a new service's gauges appear without touching this file.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.vocabulary import Severity

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now (from /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class RouteTimer:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total: int = 0
    sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.total += 1
        self.sum_s += seconds
        for i, edge in enumerate(BUCKETS_S):
            if seconds <= edge:
                self.counts[i] += 1
                return
        self.counts[-1] += 1


@dataclass
class WebMetrics:
    routes: dict[str, RouteTimer] = field(default_factory=dict)
    status_codes: dict[int, int] = field(default_factory=dict)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.routes.setdefault(route, RouteTimer()).observe(seconds)
        self.status_codes[status] = self.status_codes.get(status, 0) + 1


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: Any) -> None:
        if labels:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {value:g}")
        else:
            self.lines.append(f"{name} {value:g}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    *,
    uptime_s: float,
    now_s: float,
    store_facts: Mapping[str, Any],
    store_counters: Mapping[str, int],
    bus_dropped: Mapping[str, int],
    status: Mapping[str, Any],
    web: WebMetrics,
    sse_clients: int,
) -> str:
    t = Text()
    t.metric("outpost_uptime_seconds", "gauge", "Seconds since the appliance process started.")
    # From the clock's time since boot (AppContext.uptime_s), so an NTP step does not move it.
    t.sample("outpost_uptime_seconds", round(uptime_s, 3))
    t.metric("outpost_process_resident_memory_bytes", "gauge", "Resident memory of the process.")
    t.sample("outpost_process_resident_memory_bytes", rss_bytes())
    t.metric("outpost_store_commits_total", "counter", "Store transactions committed.")
    t.sample("outpost_store_commits_total", store_counters.get("commits", 0))
    t.metric("outpost_store_ops_total", "counter", "Store write operations committed.")
    t.sample("outpost_store_ops_total", store_counters.get("ops", 0))
    t.metric("outpost_store_queue_depth", "gauge", "Writes waiting for the store writer thread.")
    t.sample("outpost_store_queue_depth", store_counters.get("queue", 0))
    t.metric("outpost_store_bytes", "gauge", "Size of the SQLite database file.")
    t.sample("outpost_store_bytes", store_facts.get("db_bytes", 0))
    t.metric("outpost_outbox_records", "gauge", "Records waiting to be sent home, by lane.")
    t.metric("outpost_outbox_oldest_seconds", "gauge", "Age of the oldest unsent record.")
    now = now_s  # wall time (s) the outbox ages are measured against
    for lane, name in ((0, "priority"), (1, "bulk")):
        n, oldest = store_facts.get("outbox", {}).get(lane, (0, 0.0))
        t.sample("outpost_outbox_records", n, lane=name)
        t.sample("outpost_outbox_oldest_seconds", round(now - oldest, 3) if n else 0, lane=name)
    t.metric("outpost_devices", "gauge", "Devices in the inventory.")
    t.sample("outpost_devices", store_facts.get("devices", 0))
    t.metric("outpost_alerts_open", "gauge", "Open alerts by severity.")
    for severity in Severity.worst_first():
        t.sample(
            "outpost_alerts_open",
            store_facts.get("alerts_open", {}).get(severity, 0),
            severity=severity,
        )
    polls = store_facts.get("polls") or {}
    if polls:
        t.metric("outpost_poll_duration_seconds", "gauge", "Last poll duration across devices.")
        t.sample("outpost_poll_duration_seconds", round(polls["duration_avg_s"], 6), stat="avg")
        t.sample("outpost_poll_duration_seconds", round(polls["duration_max_s"], 6), stat="max")
        t.metric("outpost_poll_oldest_seconds", "gauge", "Age of the least recently polled device.")
        oldest = polls["oldest_poll_ts"]
        t.sample("outpost_poll_oldest_seconds", round(now - oldest, 3) if oldest else 0)
        t.metric("outpost_poll_unreachable_devices", "gauge", "Devices that did not answer.")
        t.sample("outpost_poll_unreachable_devices", polls["unreachable"])
    t.metric("outpost_bus_dropped_total", "counter", "Bus items dropped for slow subscribers.")
    for sub, n in bus_dropped.items():
        t.sample("outpost_bus_dropped_total", n, subscriber=sub)
    t.metric("outpost_status", "gauge", "Numeric live facts published by services.")
    for key, value in sorted(status.items()):
        if isinstance(value, bool):
            t.sample("outpost_status", int(value), key=key)
        elif isinstance(value, int | float):
            t.sample("outpost_status", value, key=key)
        elif isinstance(value, Mapping):
            for sub, v in value.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    t.sample("outpost_status", v, key=f"{key}.{sub}")
    t.metric("outpost_web_sse_clients", "gauge", "Browsers following live updates.")
    t.sample("outpost_web_sse_clients", sse_clients)
    t.metric("outpost_web_request_seconds", "histogram", "Status page and API response times.")
    for route, timer in sorted(web.routes.items()):
        cumulative = 0
        for edge, n in zip(BUCKETS_S, timer.counts, strict=False):
            cumulative += n
            t.sample("outpost_web_request_seconds_bucket", cumulative, route=route, le=edge)
        t.sample("outpost_web_request_seconds_bucket", timer.total, route=route, le="+Inf")
        t.sample("outpost_web_request_seconds_sum", round(timer.sum_s, 6), route=route)
        t.sample("outpost_web_request_seconds_count", timer.total, route=route)
    t.metric("outpost_web_responses_total", "counter", "HTTP responses by status code.")
    for code, n in sorted(web.status_codes.items()):
        t.sample("outpost_web_responses_total", n, code=code)
    return t.render()
