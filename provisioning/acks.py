"""Acknowledgements from home in the sync answer: checked, then stored on the alert rows.

Home signs them with the MSP key (envelope kind ``outpost.alert-acks``, docs/provisioning.md),
as it signs everything it tells the box: TLS authenticates the server, not the document, and
the rule is that nothing home sends is taken without the MSP's signature. The document must name
this appliance. Replaying an old one changes nothing (acknowledgements are kept first-wins).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.logs import get_log
from core.vocabulary import Severity
from core.wire.signing import ACKS_KIND, Refused, open_envelope
from services.alerting.acks import Acked, apply_acks, parse_acks
from services.context import AppContext
from services.store.records import Event

log = get_log("provisioning")


async def take_acks(
    ctx: AppContext, envelope: Any, public: Ed25519PublicKey, appliance_id: str
) -> list[Acked]:
    """Verify ``envelope`` and store its acknowledgements; the alerts changed now. A refused
    document is logged (``acks.refused`` with the reason) and changes nothing."""
    try:
        doc = open_envelope(envelope, public, ACKS_KIND)
        if doc.get("appliance") != appliance_id:
            raise Refused(
                f"acknowledgements are for appliance {doc.get('appliance')!r}, this is "
                f"{appliance_id}"
            )
    except Refused as exc:
        log.warning("acks.refused", reason=exc.reason)
        return []
    acks = parse_acks(doc.get("acks"))
    if not acks:
        return []
    changed = await ctx.store.write(lambda tx: apply_acks(tx, acks))
    for a in changed:
        log.info("alert.acknowledged", key=a.key, alert_id=a.alert_id, by=a.by)
        # Live listeners (the status page's stream) learn of it without reading the store.
        severity = Severity.parse(a.severity, Severity.WARNING)
        ctx.bus.publish(
            Event(
                "alert.acknowledged", a.device_id, severity, a.message, {"key": a.key, "by": a.by}
            )
        )
    return changed
