"""Which channels an alert goes to, and when: the first matching route decides.

Routes are tried in the configured order, then the two default routes (config.default_routes).
Info never notifies. Outside the site's business hours a route with ``hold_outside_hours``
waits for the next business-hours start (all alerts of a site held to the same start go out as
one digest); any other route sends at once, adding its ``after_hours`` channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from home.notify.config import NotifyConfig, Route, Step
from home.notify.hours import in_hours, next_start


@dataclass(frozen=True)
class Subject:
    """What routes match on. ``kind`` is the device kind when the alert carries one ('' if not)."""

    site: str
    severity: str
    kind: str
    key: str


@dataclass(frozen=True)
class Decision:
    channels: tuple[str, ...]
    due_at: float  # epoch seconds before group wait: now, or the next business-hours start
    held: bool  # waiting for business hours (goes out in the site's digest)
    escalation: tuple[Step, ...]


NOTHING = Decision((), 0.0, False, ())


def matches(route: Route, subject: Subject) -> bool:
    return (
        (not route.sites or subject.site in route.sites)
        and (not route.severities or subject.severity in route.severities)
        and (not route.kinds or subject.kind in route.kinds)
        and (not route.keys or any(fnmatchcase(subject.key, p) for p in route.keys))
    )


def decide(config: NotifyConfig, subject: Subject, now_s: float) -> Decision:
    """The first matching route's decision for an alert opening at ``now_s``."""
    if subject.severity == "info" or not subject.severity:
        return NOTHING
    route = next((r for r in config.routes if matches(r, subject)), None)
    if route is None or (not route.channels and not route.after_hours):
        return NOTHING
    hours = config.hours_for(subject.site)
    if in_hours(hours, now_s):
        return Decision(route.channels, now_s, False, route.escalation)
    if route.hold_outside_hours:
        return Decision(route.channels, next_start(hours, now_s), True, route.escalation)
    extra = tuple(c for c in route.after_hours if c not in route.channels)
    return Decision(route.channels + extra, now_s, False, route.escalation)
