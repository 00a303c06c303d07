"""Is the host there? Liveness from every answer it gives, not from ping alone.

A host is *up* in a poll when anything of it answered:

* ``icmp``: an echo reply;
* ``arp``: an ARP reply (or any ARP frame it sent) for an on-link address; a host that ignores
  pings (a Windows PC's firewall, many phones and IoT devices) still answers ARP, because
  without ARP it could not talk on the LAN at all;
* ``tcp``: a SYN-ACK *or* an RST: "connection refused" is the host's own TCP stack answering;
  only silence (a timeout, an ICMP unreachable from a router) is no answer;
* ``snmp``: any SNMP response, an error status included;
* ``mdns``: an mDNS announcement heard by discovery since the previous poll.

It is *down* only when every method that has worked for it before stayed silent in the poll
(the alerting side waits for ``down_after_missed`` such polls). A method that was not tried
(ICMP with no ICMP socket, ARP for a host behind a router) is neither an answer nor a silence:
a box without CAP_NET_RAW degrades to the other methods and never calls a host down for it.

Everything here is pure and takes wall times (seconds since the epoch) as arguments, so the
decision can be tested on virtual time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: The methods in the order they are named in messages.
METHODS = ("arp", "icmp", "tcp", "snmp", "mdns")
LABELS = {"arp": "ARP", "icmp": "ICMP", "tcp": "TCP", "snmp": "SNMP", "mdns": "mDNS"}


def method_of(check: str) -> str:
    """The liveness method of a check name: "tcp:445" and "tcp-probe:80" -> "tcp"."""
    head = check.split(":", 1)[0]
    return "tcp" if head == "tcp-probe" else head


@dataclass(frozen=True)
class Answer:
    """What one method got from the host in one poll."""

    method: str  # one of METHODS
    answered: bool
    # A last-resort probe (TCP probe ports): its answer counts, its silence only once the
    # method has worked for this host; a host nobody can reach otherwise stays unknown, not down.
    weak: bool = False


@dataclass(frozen=True)
class Verdict:
    """The liveness of one device after one poll, with the evidence used."""

    reachable: bool | None  # None: no method could be tried at all
    answered: tuple[str, ...]  # methods that answered in this poll
    silent: tuple[str, ...]  # methods that worked before (or were tried) and stayed silent
    last_answer_wall: float | None  # last time any method answered (None: never)
    missed: int  # consecutive polls without any answer


@dataclass
class Liveness:
    """What polling remembers of how a device proves it is there, between its polls."""

    worked: set[str] = field(default_factory=set)  # methods that answered at least once
    last_answer: dict[str, float] = field(default_factory=dict)  # method -> wall time
    missed: int = 0
    last_poll_wall: float | None = None

    def decide(
        self, answers: Iterable[Answer], heard: Mapping[str, float], wall_s: float
    ) -> Verdict:
        """Fold one poll's answers and passive sightings (method -> wall time heard, e.g.
        discovery's mDNS) into a verdict. A sighting counts when it is newer than the
        previous poll, so an announcement made between two polls keeps the host up."""
        tried: set[str] = set()
        got: set[str] = set()
        for a in answers:
            if a.answered:
                got.add(a.method)
            if a.answered or not a.weak or a.method in self.worked:
                tried.add(a.method)
        since = self.last_poll_wall
        for method, at in heard.items():
            if since is None or at > since:
                got.add(method)
                tried.add(method)
                self.last_answer[method] = max(at, self.last_answer.get(method, at))
        for method in got:
            self.last_answer[method] = max(wall_s, self.last_answer.get(method, wall_s))
        self.worked |= got
        self.last_poll_wall = wall_s
        if got:
            self.missed = 0
            reachable: bool | None = True
        elif tried:
            self.missed += 1
            reachable = False
        else:
            reachable = None  # nothing could be tried: no verdict, no miss counted
        # Answered: what did not answer this time (for the page). Silent: the methods that
        # worked before, tried now or not (ICMP that lost its socket is still part of "no
        # answer since"); for a host never heard, what was tried.
        silent_set = tried - got if got else set(self.worked) or tried
        return Verdict(
            reachable,
            ordered(got),
            ordered(silent_set),
            max(self.last_answer.values()) if self.last_answer else None,
            self.missed,
        )


def ordered(methods: Iterable[str]) -> tuple[str, ...]:
    """Methods in the canonical order of METHODS (unknown ones last, sorted)."""
    wanted = set(methods)
    known = tuple(m for m in METHODS if m in wanted)
    return known + tuple(sorted(wanted - set(METHODS)))


def spoken(methods: Iterable[str]) -> str:
    """ "ARP, ICMP or SNMP" for the messages a technician reads."""
    names = [LABELS.get(m, m) for m in ordered(methods)]
    if not names:
        return "any"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def clock_time(wall_s: float, now_s: float) -> str:
    """Local "21:04" for today, "Mon 21:04" within a week, else "2026-11-30 21:04"."""
    when = datetime.fromtimestamp(wall_s, tz=UTC).astimezone()  # the box's local zone
    now = datetime.fromtimestamp(now_s, tz=UTC).astimezone()
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if abs(now_s - wall_s) < 6 * 86400:
        return when.strftime("%a %H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def silence_text(silent: Iterable[str], last_answer_wall: float | None, now_s: float) -> str:
    """ "no ARP, ICMP or SNMP answer since 21:04" (or "... ever" for a host never heard)."""
    methods = spoken(silent)
    if last_answer_wall is None:
        return f"no {methods} answer since monitoring began"
    return f"no {methods} answer since {clock_time(last_answer_wall, now_s)}"


def duration_text(seconds: float) -> str:
    """ "3 h 12 min", "14 min", "40 s": how long a device was away."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"
