"""Claiming: an unclaimed box phones home with its public key and a claim code; the MSP claims it.

The claim code is 16 random base32 characters (80 bits, from the OS's CSPRNG: nothing about the
box, its MAC or its serial goes into it), shown as ``ABCD-EFGH-JKLM-NPQR`` on the label, the
status page and ``outpost status``. Home only ever receives its SHA-256, so its database cannot
be used to claim boxes. A code expires (``claim_code_ttl_s``) and is then replaced by a new one;
once the box is claimed the code is spent; when the MSP releases the box it makes a new one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import fsops
from core.clock import Clock, system_clock
from core.wire.claim_codes import ALPHABET, CODE_CHARS


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_CHARS, 4))


@dataclass(frozen=True)
class ClaimState:
    code: str
    code_expires_at: float
    claimed: bool = False
    site: str = ""
    msp_key: str = ""  # the MSP's Ed25519 public key: signs configurations and commands
    claimed_at: float = 0.0
    appliance: str = ""  # the identity this state belongs to (a factory reset makes a new one)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ClaimStore:
    def __init__(self, state_dir: Path, ttl_s: float, clock: Clock | None = None) -> None:
        self.path = Path(state_dir) / "claim.json"
        self.ttl_s = ttl_s
        self.clock = clock or system_clock()  # code expiry and claimed_at (wall time)

    def _save(self, state: ClaimState) -> ClaimState:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fsops.write_json_atomic(self.path, state.as_dict(), mode=0o640)
        return state

    def load(self, appliance: str = "", now: float | None = None) -> ClaimState:
        """The claim state, with a fresh code if there is none, the old one expired, or it
        belongs to another identity (the box was reset and has a new key)."""
        now = self.clock.wall() if now is None else now
        data = fsops.read_json(self.path)
        if isinstance(data, dict):
            try:
                state = ClaimState(**data)
            except TypeError:
                state = None
            if (
                state is not None
                and (not appliance or state.appliance in ("", appliance))
                and (state.claimed or state.code_expires_at > now)
            ):
                return state
        return self._save(ClaimState(new_code(), now + self.ttl_s, appliance=appliance))

    def mark_claimed(self, site: str, msp_key: str, appliance: str = "") -> ClaimState:
        state = self.load(appliance)
        return self._save(
            ClaimState(
                state.code, state.code_expires_at, True, site, msp_key, self.clock.wall(), appliance
            )
        )

    def release(self, appliance: str = "") -> ClaimState:
        """The MSP released the box: forget the claim, make a new code (the old one is spent)."""
        expires_at = self.clock.wall() + self.ttl_s
        return self._save(ClaimState(new_code(), expires_at, appliance=appliance))


def claim_summary(state_dir: str | Path) -> dict[str, Any]:
    """For ``outpost status``: claimed for which site, or the code to claim it with."""
    data = fsops.read_json(Path(state_dir) / "claim.json")
    if not isinstance(data, dict):
        return {"provisioning": "not started yet (the appliance makes its claim code at start)"}
    if data.get("claimed"):
        return {"provisioning": "claimed", "site": data.get("site", "")}
    return {"provisioning": "unclaimed", "claim_code": data.get("code", "")}
