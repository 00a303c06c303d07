"""The shared SNMP corpus served on loopback: one snmpsim for every recording (each answers
to its file stem as v2c community), the device class of each recording, and the target the
client uses to read one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from core.schema import Secret
from services.snmp import SnmpCredential, Target
from simsite.harness.paths import CORPUS, corpus_missing_reason
from simsite.local_agents import Snmpsim

#: Device class of each recording (from the corpus README).
CORPUS_KINDS: Final = {
    "pfsense": "router",
    "draytek_vigor2962": "router",
    "ciscosb_cbs250-24p-4x-v3": "switch",
    "edgeswitch_10xp": "switch",
    "tplink_sg2008": "switch",
    "procurve_2520": "switch",
    "unifi_nanohd": "ap",
    "aruba-instant": "ap",
    "dsm": "nas",
    "truenas": "nas",
    "brother": "printer",
    "epson": "printer",
    "konica": "printer",
    "ricoh_mpc3002": "printer",
    "apc_smt750x-nmc2": "ups",
    "eaton-mgeups_9px": "ups",
    "cyberpower": "ups",
    "windows_svr_2019_1809": "server",
    "linux": "server",
    "vmware-esxi": "server",
    "hpe-ilo_4": "server",
    "axiscam_p1435-le": "camera",
}
#: The SNMP credential name is at most this long (a recording's stem may be longer).
CREDENTIAL_NAME_CHARS: Final = 32


@contextlib.contextmanager
def corpus_agent(
    workdir: Path, names: list[str] | None = None, corpus: Path = CORPUS
) -> Iterator[int]:
    """One snmpsim on 127.0.0.1 serving every recording of ``corpus`` (or only ``names``);
    yields its UDP port once it answers. FileNotFoundError when there is nothing to serve."""
    missing = corpus_missing_reason(corpus)
    if missing:
        raise FileNotFoundError(missing)
    recordings = [rec for rec in corpus.glob("*.snmprec") if names is None or rec.stem in names]
    if not recordings:
        raise FileNotFoundError(f"none of {names} is a recording in {corpus}")
    with Snmpsim(recordings, workdir) as agent:
        yield agent.port


def corpus_target(port: int, name: str, timeout_s: float = 3.0) -> Target:
    """Recording ``name`` of the corpus agent on ``port`` (its stem is the community)."""
    credential = SnmpCredential(name=name[:CREDENTIAL_NAME_CHARS], community=Secret(name))
    return Target("127.0.0.1", port, credential, timeout_s=timeout_s, retries=1)
