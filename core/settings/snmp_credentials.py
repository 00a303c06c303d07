"""SNMP credentials: one ``[[snmp.credentials]]`` table of the configuration each.

Example::

    [[snmp.credentials]]
    name = "office-v3"
    version = "3"
    user = "outpost"
    auth_protocol = "SHA256"
    auth_key = "a long passphrase"
    priv_protocol = "AES"
    priv_key = "another long passphrase"

Communities and keys are :class:`Secret`: no repr, log line or error message shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from core.schema import Secret, setting

# RFC 3414 section 11.2: passphrases shorter than 8 characters are refused by net-snmp and
# pysnmp alike; saying so at load time beats an "unknown user" from the device.
MIN_PASSPHRASE_CHARS: Final = 8
# SnmpAdminString (RFC 3411) for USM user names: 1..32 octets.
MAX_USER_BYTES: Final = 32
MAX_NAME_CHARS: Final = 64

AuthProtocol = Literal["none", "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["none", "DES", "AES", "AES192", "AES256"]


def _name(value: str) -> str | None:
    if not value or len(value) > MAX_NAME_CHARS or not value.isprintable():
        return f"must be 1 to {MAX_NAME_CHARS} printable characters, e.g. 'office-v3'"
    return None


def _user(value: str) -> str | None:
    if len(value.encode()) > MAX_USER_BYTES or not value.isprintable():
        return f"must be at most {MAX_USER_BYTES} bytes of printable text"
    return None


@dataclass(frozen=True)
class SnmpCredential:
    name: str = setting("public-v2c", check=_name, help="a label for this credential")
    version: Literal["1", "2c", "3"] = setting("2c", help="SNMP version: '1', '2c' or '3'")
    community: Secret = setting(Secret("public"), help="community for versions 1 and 2c")
    user: str = setting("", check=_user, help="SNMPv3 user name (USM)")
    auth_protocol: AuthProtocol = setting("none", help="SNMPv3 authentication, e.g. 'SHA256'")
    auth_key: Secret = setting(Secret(""), help="SNMPv3 authentication passphrase")
    priv_protocol: PrivProtocol = setting("none", help="SNMPv3 privacy (encryption), e.g. 'AES'")
    priv_key: Secret = setting(Secret(""), help="SNMPv3 privacy passphrase")
    context: str = setting("", help="SNMPv3 context name; empty for the default context")

    def __post_init__(self) -> None:
        # Cross-field checks; the config loader prefixes the table (snmp.credentials[0]).
        if self.version in ("1", "2c"):
            if not self.community:
                raise ValueError(
                    f"credential {self.name!r}: version {self.version!r} needs a community; "
                    'add community = "..."'
                )
            if self.user or self.auth_protocol != "none" or self.priv_protocol != "none":
                raise ValueError(
                    f"credential {self.name!r}: user/auth_protocol/priv_protocol are SNMPv3 "
                    'settings; set version = "3" or remove them'
                )
            return
        if not self.user:
            raise ValueError(
                f'credential {self.name!r}: version "3" needs a user; add user = "..."'
            )
        if self.priv_protocol != "none" and self.auth_protocol == "none":
            raise ValueError(
                f"credential {self.name!r}: priv_protocol needs authentication too; "
                'set auth_protocol (e.g. "SHA256") and auth_key'
            )
        for protocol, key, key_name in (
            (self.auth_protocol, self.auth_key, "auth_key"),
            (self.priv_protocol, self.priv_key, "priv_key"),
        ):
            if protocol != "none" and len(key.reveal()) < MIN_PASSPHRASE_CHARS:
                raise ValueError(
                    f"credential {self.name!r}: {key_name} must be at least "
                    f"{MIN_PASSPHRASE_CHARS} characters for {protocol}"
                )
            if protocol == "none" and key:
                raise ValueError(
                    f"credential {self.name!r}: {key_name} is set but its protocol is "
                    '"none"; set the protocol or remove the key'
                )

    @property
    def security_level(self) -> Literal["noAuthNoPriv", "authNoPriv", "authPriv"]:
        if self.auth_protocol == "none":
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol == "none" else "authPriv"
