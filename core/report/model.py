"""The report as rendered: every text a sentence, every figure traceable (see docs/report.md)."""

from __future__ import annotations

from dataclasses import dataclass

from core.report.availability import Availability, Run


@dataclass(frozen=True)
class Figure:
    value: str  # "99.9 %"
    label: str  # "of business hours, key devices up"


@dataclass(frozen=True)
class Problem:
    """One incident: an alert, or a storm of the same alert on the same device, as one line."""

    title: str  # plain words: "The file server's disk reached 82 % full"
    device: str
    started_s: float
    ended_s: float | None  # None: still open at the end of the period
    duration_s: float | None
    occurrences: int
    affected_office: bool  # a key device unreachable in business hours
    severity: str
    acknowledged: bool
    alert_ids: tuple[int, ...]
    rule: str
    key: str

    @property
    def is_open(self) -> bool:
        return self.ended_s is None


@dataclass(frozen=True)
class Outlook:
    """Something coming: a volume filling, a supply running out, a battery to replace."""

    title: str
    device: str
    due_s: float | None  # the forecast date, None when no date applies
    detail: str  # how it was worked out, in plain words
    technical: str  # the fit, for the appendix
    series: tuple[str, int, str] | None = None  # ("volume"|"supply", device id, instance)


@dataclass(frozen=True)
class DeviceAvailability:
    device_id: int
    name: str
    kind: str
    ip: str
    key: bool  # counted in the headline figure
    figures: Availability
    outages: tuple[Run, ...]  # the down runs, in order
    polls: int
    gaps: tuple[Run, ...] = ()  # the unknown runs (no data), in order


@dataclass(frozen=True)
class Change:
    kind: str  # joined / left / address
    device: str
    ts: float
    text: str
    needs_look: bool  # an unknown device joined: worth a look


@dataclass(frozen=True)
class Action:
    ts: float
    text: str


@dataclass(frozen=True)
class AppendixAlert:
    id: int
    key: str
    rule: str
    severity: str
    device: str
    opened_s: float
    resolved_s: float | None
    message: str


@dataclass(frozen=True)
class Report:
    site: str
    msp_name: str
    period_label: str
    period_start_s: float
    period_end_s: float
    timezone: str
    hours_text: str
    headline: str
    figures: tuple[Figure, ...]  # at most three
    problems: tuple[Problem, ...]  # worst and longest first
    outlook: tuple[Outlook, ...]
    availability: tuple[DeviceAvailability, ...]  # key devices first
    site_bh_pct: float | None
    site_pct: float | None
    site_bh_unknown_s: float
    changes: tuple[Change, ...]
    actions: tuple[Action, ...]
    appendix_alerts: tuple[AppendixAlert, ...]
    methods: tuple[str, ...]  # how each figure was computed (appendix)
    source: str

    @property
    def page_one_problems(self) -> tuple[Problem, ...]:
        return self.problems[:5]
