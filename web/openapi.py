"""The OpenAPI 3.1 description of the read-only JSON API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

_OBJ: dict[str, Any] = {"type": "object"}


def _get(
    summary: str, params: list[dict[str, Any]] | None = None, content: str = "application/json"
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {"200": {"description": "OK", "content": {content: {"schema": _OBJ}}}},
        }
    }


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_RANGE = _q("range", "24h or 7d", {"type": "string", "enum": ["24h", "7d"]})


def spec(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outpost appliance local API",
            "version": version,
            "description": (
                "Read-only status of the appliance and the site it monitors, served on the LAN. "
                "No secret (community, key, token) ever appears in a response. State changes "
                "(acknowledge, rediscover, identify) are HTML form POSTs that need the admin "
                "session cookie and its CSRF token; they are not part of this read-only API."
            ),
        },
        "paths": {
            "/api/v1/status": _get("Site health headline, uplink, counts, front panel, live facts"),
            "/api/v1/overview": _get("Device counts by state and kind, open alerts, down list"),
            "/api/v1/devices": _get(
                "Every device with its state, latency and open alerts",
                [
                    _q("q", "search name, IP, MAC, vendor or kind"),
                    _q("sort", "name, ip, kind, state, last_seen or rtt; '-' prefix reverses"),
                ],
            ),
            "/api/v1/devices/{id}": _get(
                "One device: identity, evidence, SNMP facts, latest readings, alerts, events",
                [_ID],
            ),
            "/api/v1/devices/{id}/series": _get(
                "Bucketed [ts, avg, min, max] of one metric per instance",
                [_ID, _q("metric", "e.g. icmp.rtt_ms, if.in_bps"), _RANGE],
            ),
            "/api/v1/alerts": _get(
                "Alerts", [_q("state", "open or resolved", {"enum": ["open", "resolved"]})]
            ),
            "/api/v1/events": _get(
                "Event timeline, newest first",
                [
                    _q("limit", "1-1000", {"type": "integer"}),
                    _q("before", "event id to page back from", {"type": "integer"}),
                    _q("severity", "critical, major, minor, warning or info"),
                ],
            ),
            "/api/v1/network": _get("The appliance's addresses, gateway, DNS, monitored subnets"),
            "/api/v1/stream": _get(
                "Server-sent events: 'change' with a version whenever the data changes",
                content="text/event-stream",
            ),
            "/api/v1/openapi.json": _get("This document"),
            "/metrics": _get("Appliance health in Prometheus text format", content="text/plain"),
        },
    }
