"""Settings of the local status page ([web] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import port, setting


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = setting(True, help="serve the status page on the LAN")
    listen: str = setting("0.0.0.0", help="address to listen on")
    port: int = setting(8080, check=port, help="TCP port of the status page")
    # The simulated site runs the appliance in a network namespace; a Unix socket (a file, so
    # visible from every namespace) lets `make run` forward the page to the developer's browser.
    unix_socket: str = setting("", help="also serve on this Unix socket path (empty: no)")
