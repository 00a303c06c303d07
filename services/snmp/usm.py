"""SNMPv3 (USM: authentication and privacy) through pysnmp, behind the client's interface.

SNMPv3 needs engine discovery, time windows, key localisation, HMACs and ciphers; pysnmp does
all that correctly and v3 devices are few in an office, so its CPU cost is acceptable here.
Its values are converted to :mod:`services.snmp.values` so callers never see pysnmp types.

One pysnmp engine per credential: pysnmp's configuration cache keys a USM user by name only,
so two credentials with the same user name and different keys in one engine would replace
each other's keys while requests are in flight. The engines share one MIB view: building it
(SNMPv2-SMI and friends, for pysnmp's OID handling) costs ~0.4 s of CPU on a laptop core,
several seconds on a Pi, and it is the same for every engine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any, Final

from core.settings.snmp_credentials import SnmpCredential
from services.snmp import ber
from services.snmp.errors import SnmpErrorStatus, SnmpTimeout, SnmpV3Error, error_status_name
from services.snmp.stats import SnmpStats
from services.snmp.target import Target
from services.snmp.values import (
    OID,
    Counter32,
    Counter64,
    EndOfMibView,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    Opaque,
    SnmpValue,
    TimeTicks,
    Varbind,
    oid_to_str,
)

_AUTH: Final = {
    "none": "USM_AUTH_NONE",
    "MD5": "USM_AUTH_HMAC96_MD5",
    "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA224": "USM_AUTH_HMAC128_SHA224",
    "SHA256": "USM_AUTH_HMAC192_SHA256",
    "SHA384": "USM_AUTH_HMAC256_SHA384",
    "SHA512": "USM_AUTH_HMAC384_SHA512",
}
# AES192/AES256 as net-snmp (and most devices) do them: key extension of
# draft-blumenthal-aes-usm, which pysnmp calls "Blumenthal" (its plain AES192 is Cisco's).
_PRIV: Final = {
    "none": "USM_PRIV_NONE",
    "DES": "USM_PRIV_CBC56_DES",
    "AES": "USM_PRIV_CFB128_AES",
    "AES192": "USM_PRIV_CFB192_AES_BLUMENTHAL",
    "AES256": "USM_PRIV_CFB256_AES_BLUMENTHAL",
}


def _converters() -> dict[Any, Callable[[Any], SnmpValue]]:
    from pysnmp.proto import rfc1902, rfc1905

    def octets(value: Any) -> bytes:
        return bytes(value.asOctets())

    return {
        rfc1902.Integer32.tagSet: lambda v: Integer(int(v)),
        rfc1902.OctetString.tagSet: lambda v: OctetString(octets(v)),
        rfc1902.ObjectIdentifier.tagSet: lambda v: ObjectIdentifier(tuple(v)),
        rfc1902.IpAddress.tagSet: lambda v: IpAddress(".".join(map(str, octets(v)))),
        rfc1902.Counter32.tagSet: lambda v: Counter32(int(v)),
        rfc1902.Gauge32.tagSet: lambda v: Gauge32(int(v)),
        rfc1902.TimeTicks.tagSet: lambda v: TimeTicks(int(v)),
        rfc1902.Opaque.tagSet: lambda v: Opaque(octets(v)),
        rfc1902.Counter64.tagSet: lambda v: Counter64(int(v)),
        rfc1902.Null.tagSet: lambda v: Null,
        rfc1905.NoSuchObject.tagSet: lambda v: NoSuchObject,
        rfc1905.NoSuchInstance.tagSet: lambda v: NoSuchInstance,
        rfc1905.EndOfMibView.tagSet: lambda v: EndOfMibView,
    }


class UsmBackend:
    """Sends v3 requests with pysnmp's asyncio high-level API (imported on first use)."""

    def __init__(self, stats: SnmpStats) -> None:
        self._stats = stats
        self._engines: dict[SnmpCredential, tuple[Any, Any]] = {}
        self._convert: dict[Any, Callable[[Any], SnmpValue]] = {}
        self._mib_view: Any = None

    def _engine(self, credential: SnmpCredential) -> tuple[Any, Any]:
        """(SnmpEngine, UsmUserData) of a credential, made once."""
        found = self._engines.get(credential)
        if found is not None:
            return found
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        if not self._convert:
            self._convert = _converters()
        keys: dict[str, Any] = {}
        if credential.auth_protocol != "none":
            keys["authKey"] = credential.auth_key.reveal()
            keys["authProtocol"] = getattr(hlapi, _AUTH[credential.auth_protocol])
        if credential.priv_protocol != "none":
            keys["privKey"] = credential.priv_key.reveal()
            keys["privProtocol"] = getattr(hlapi, _PRIV[credential.priv_protocol])
        engine = hlapi.SnmpEngine()
        # pysnmp's hlapi keeps its MIB view in the engine's user cache under this key
        # (pysnmp.hlapi.varbinds.MibViewControllerManager); seed it with the shared one.
        if self._mib_view is None:
            from pysnmp.smi import builder, view

            self._mib_view = view.MibViewController(builder.MibBuilder())
        engine.cache["mibViewController"] = self._mib_view
        found = (engine, hlapi.UsmUserData(credential.user, **keys))
        self._engines[credential] = found
        return found

    async def close(self) -> None:
        for engine, _ in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()

    async def send(
        self, target: Target, pdu_type: int, oids: Sequence[OID], max_repetitions: int = 0
    ) -> tuple[Varbind, ...]:
        from pyasn1.error import PyAsn1Error
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch import asyncio as hlapi
        from pysnmp.proto import errind

        credential = target.credential
        engine, user = self._engine(credential)
        transport_class = hlapi.UdpTransportTarget
        try:
            if ipaddress.ip_address(target.host).version == 6:
                transport_class = hlapi.Udp6TransportTarget
        except ValueError:
            pass  # a host name: resolved as IPv4
        context = hlapi.ContextData(contextName=credential.context.encode())
        # pysnmp cannot encode a one-arc OID; net-snmp (and our codec) send ".1" as ".1.0".
        names = [oid if len(oid) > 1 else (*oid, 0) for oid in oids]
        objects = [hlapi.ObjectType(hlapi.ObjectIdentity(oid_to_str(oid))) for oid in names]
        self._stats.requests += 1
        try:
            transport = await transport_class.create(
                (target.host, target.port), timeout=target.timeout_s, retries=target.retries
            )
            if pdu_type == ber.GET_REQUEST:
                call = hlapi.get_cmd(engine, user, transport, context, *objects, lookupMib=False)
            elif pdu_type == ber.GET_NEXT_REQUEST:
                call = hlapi.next_cmd(engine, user, transport, context, *objects, lookupMib=False)
            else:
                call = hlapi.bulk_cmd(
                    engine, user, transport, context, 0, max_repetitions, *objects, lookupMib=False
                )
            error_indication, error_status, error_index, var_binds = await call
        except (PySnmpError, PyAsn1Error) as exc:
            # Name resolution, serialisation, engine state: keep the "every error is an
            # SnmpError" promise. pysnmp's texts name protocols and addresses, not keys.
            raise SnmpV3Error(f"{target.host}: {type(exc).__name__}: {exc}") from None
        if error_indication:
            # errind texts name the failure (timeout, unknownUserName, wrongDigest...), never keys.
            if isinstance(error_indication, errind.RequestTimedOut):
                self._stats.timeouts += 1
                raise SnmpTimeout(target.host)
            raise SnmpV3Error(f"{target.host}: {error_indication}")
        if int(error_status):
            index = int(error_index)
            oid = tuple(oids[index - 1]) if 1 <= index <= len(oids) else None
            raise SnmpErrorStatus(error_status_name(int(error_status)), index, oid)
        self._stats.varbinds += len(var_binds)
        return tuple(self._varbind(name, value) for name, value in var_binds)

    def _varbind(self, name: Any, value: Any) -> Varbind:
        convert = self._convert.get(value.tagSet)
        if convert is None:
            raise SnmpV3Error(f"unsupported value type {type(value).__name__}")
        return Varbind(tuple(name), convert(value))
