"""Settings of the uplink to the MSP's home server ([uplink] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import non_negative, positive, setting


def _https_or_empty(value: str) -> str | None:
    if value == "" or value.startswith("https://"):
        return None
    return (
        f"{value!r} is not an https:// URL; the uplink only speaks TLS to home (empty: no uplink)"
    )


@dataclass(frozen=True)
class UplinkSettings:
    url: str = setting(
        "",
        check=_https_or_empty,
        help="home server URL, e.g. 'https://home.example-msp.net' (empty: none)",
    )
    ca_file: str = setting(
        "/etc/outpost/msp-ca.pem",
        help="the MSP's CA certificate (PEM); home must present a certificate it signed",
    )
    batch_max_records: int = setting(2000, check=positive, help="most records in one request")
    batch_max_bytes: int = setting(
        512 * 1024, check=positive, help="most uncompressed body bytes in one request"
    )
    # Bulk records wait up to this long to fill a batch; alerts and events never wait.
    batch_max_age_s: float = setting(10.0, check=non_negative, help="longest wait to fill a batch")
    request_timeout_s: float = setting(30.0, check=positive, help="timeout of one request")
    backoff_first_s: float = setting(
        1.0, check=positive, help="first retry delay (capped, jittered)"
    )
    backoff_cap_s: float = setting(300.0, check=positive, help="longest delay between retries")
    heartbeat_s: float = setting(60.0, check=positive, help="seconds between heartbeats")
    # The appliance's own health (CPU, memory, disk free, queue depth) as measurements.
    self_measure_s: float = setting(
        60.0, check=non_negative, help="seconds between self-measurements (0: off)"
    )
    storage_check_s: float = setting(
        5.0, check=positive, help="seconds between checks of the store's disk budget"
    )
