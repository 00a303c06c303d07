"""Settings of the local status page ([web] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import port, positive, setting


def scrypt_hash(value: str) -> str | None:
    """Accept only an empty value or a hash from `web.auth.hash_password`, never plaintext."""
    if not value:
        return None
    parts = value.split("$")
    if len(parts) == 6 and parts[0] == "scrypt" and all(parts[1:]):
        return None
    return (
        "is not a scrypt hash; write the output of "
        "`python -m web.auth hash` (a plain password is refused)"
    )


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = setting(True, help="serve the status page on the LAN")
    listen: str = setting("0.0.0.0", help="address to listen on")
    port: int = setting(8080, check=port, help="TCP port of the status page")
    # The simulated site runs the appliance in a network namespace; a Unix socket (a file, so
    # visible from every namespace) lets `make run` forward the page to the developer's browser.
    unix_socket: str = setting("", help="also serve on this Unix socket path (empty: no)")
    # Set by provisioning; when empty the first visitor on the LAN sets the password at /setup.
    admin_password_hash: str = setting(
        "", check=scrypt_hash, help="scrypt hash of the admin password (empty: set at first use)"
    )
    session_ttl_s: float = setting(
        8 * 3600.0, check=positive, help="seconds an admin session lasts without use"
    )
    login_attempts_per_min: int = setting(
        5, check=positive, help="failed logins allowed per client address per minute"
    )
