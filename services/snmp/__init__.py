"""SNMP client library of the appliance (used by discovery and polling).

See docs/snmp.md for the design; the names below are the whole public interface.
"""

from core.settings.snmp import SnmpSettings
from core.settings.snmp_credentials import SnmpCredential
from services.snmp.client import SnmpClient
from services.snmp.errors import (
    SnmpDecodeError,
    SnmpError,
    SnmpErrorStatus,
    SnmpTimeout,
    SnmpV3Error,
    SnmpWalkLoop,
    SnmpWalkTimeout,
)
from services.snmp.stats import SnmpStats
from services.snmp.target import Target
from services.snmp.values import (
    OID,
    Counter32,
    Counter64,
    EndOfMibView,
    Gauge32,
    Integer,
    Integer32,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    OIDLike,
    Opaque,
    SnmpValue,
    TimeTicks,
    Unsigned32,
    Varbind,
    is_absent,
    oid_from_str,
    oid_to_str,
    to_oid,
)

__all__ = [
    "OID",
    "Counter32",
    "Counter64",
    "EndOfMibView",
    "Gauge32",
    "Integer",
    "Integer32",
    "IpAddress",
    "NoSuchInstance",
    "NoSuchObject",
    "Null",
    "OIDLike",
    "ObjectIdentifier",
    "OctetString",
    "Opaque",
    "SnmpClient",
    "SnmpCredential",
    "SnmpDecodeError",
    "SnmpError",
    "SnmpErrorStatus",
    "SnmpSettings",
    "SnmpStats",
    "SnmpTimeout",
    "SnmpV3Error",
    "SnmpValue",
    "SnmpWalkLoop",
    "SnmpWalkTimeout",
    "Target",
    "TimeTicks",
    "Unsigned32",
    "Varbind",
    "is_absent",
    "oid_from_str",
    "oid_to_str",
    "to_oid",
]
