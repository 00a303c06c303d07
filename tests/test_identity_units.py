"""SNMP identity and classification rules, on small recordings read in memory (no agent).

The acceptance measurement goes through real agents (tests/test_identity_corpus.py); these
pin the ranking of sources, the cleaning of values at the source and the weighing of class
evidence, each on the smallest recording that shows it.
"""

from __future__ import annotations

from pathlib import Path

from services.discovery.classify import classify, evidence_from_vendor, gather
from services.discovery.mdns import MdnsService
from services.discovery.snmp_identity import SnmpIdentity, clean_field, read_identity
from services.discovery.vendor_table import RULES, probe_oids
from tests.discovery_corpus import SnmprecReader

SYS = "1.3.6.1.2.1.1"


async def _identity(tmp_path: Path, *lines: str) -> SnmpIdentity:
    path = tmp_path / "device.snmprec"
    path.write_text("\n".join(lines) + "\n")
    return await read_identity(SnmprecReader(path))


def _kind(ident: SnmpIdentity, vendor: str = "", mdns: tuple[MdnsService, ...] = ()) -> str:
    evidence = gather(snmp=ident, mdns=mdns, vendor=vendor, local_mac=False, is_gateway=False)
    return classify(evidence)[0]


async def test_qnap_version_is_cleaned_at_the_source(tmp_path: Path) -> None:
    # A QNAP answers with net-snmp's generic sysObjectID; its MIB recognises it (probe), and
    # its firmware string arrives as "\4.3.3" (a stray backslash from the agent's script).
    ident = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Linux TS-453Be 4.14.24-qnap",
        f"{SYS}.2.0|6|1.3.6.1.4.1.8072.3.2.10",
        "1.3.6.1.4.1.55062.1.12.3.0|4|TS-453Be",
        "1.3.6.1.4.1.55062.1.12.5.0|4| Q193C41816 ",
        "1.3.6.1.4.1.55062.1.12.6.0|4|\\4.3.3.1161",
    )
    assert (ident.platform, ident.vendor, ident.kind) == ("qnap", "QNAP", "nas")
    assert (ident.model, ident.serial, ident.version) == ("TS-453Be", "Q193C41816", "4.3.3.1161")
    assert ident.sources["version"].startswith("QTS-MIB firmwareVersion")
    assert clean_field('"=\\1.2.3\\\\"') == "1.2.3"
    assert clean_field("To be filled by O.E.M.") == "" and clean_field("N/A") == ""


async def test_entity_chassis_is_the_uncontained_chassis_row(tmp_path: Path) -> None:
    # A stack: row 1 is the stack (class stack(11)), rows 2 and 3 chassis, row 3 inside row 2
    # ... and an unknown sysObjectID: everything comes from the standard MIB.
    ent = "1.3.6.1.2.1.47.1.1.1.1"
    ident = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Managed Switch",
        f"{SYS}.2.0|6|1.3.6.1.4.1.99999.3",
        f"{ent}.5.1|2|11", f"{ent}.5.2|2|3", f"{ent}.5.3|2|3",
        f"{ent}.4.1|2|0", f"{ent}.4.2|2|0", f"{ent}.4.3|2|2",
        f"{ent}.13.2|4|XS-5048", f"{ent}.11.2|4|SN-TOP", f"{ent}.10.2|4|7.1.2",
        f"{ent}.13.3|4|XS-MODULE", f"{ent}.11.3|4|SN-INNER",
    )  # fmt: skip
    assert (ident.model, ident.serial, ident.version) == ("XS-5048", "SN-TOP", "7.1.2")
    assert ident.sources["model"] == "ENTITY-MIB chassis entPhysicalModelName.2"
    assert ident.platform == ""


async def test_bridge_ports_make_a_switch_of_an_unknown_device(tmp_path: Path) -> None:
    ports = [f"1.3.6.1.2.1.17.1.4.1.2.{i}|2|{i}" for i in range(1, 9)]
    ident = await _identity(
        tmp_path, f"{SYS}.1.0|4|GS1900-8", f"{SYS}.2.0|6|1.3.6.1.4.1.99999.1", *ports
    )
    assert ident.kind == "switch" and "BRIDGE-MIB" in ident.why
    assert _kind(ident) == "switch"
    # A Linux host bridging two interfaces is not a switch.
    few = await _identity(tmp_path, f"{SYS}.1.0|4|Linux host 6.1 x86_64", *ports[:2])
    assert _kind(few) == "server"


async def test_printer_and_ups_mibs_decide_the_kind(tmp_path: Path) -> None:
    printer = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Network device",
        f"{SYS}.2.0|6|1.3.6.1.4.1.99999.2",
        "1.3.6.1.2.1.43.5.1.1.1.1|65|12",
        "1.3.6.1.2.1.43.5.1.1.17.1|4|PRN12345",
    )
    assert _kind(printer) == "printer" and printer.serial == "PRN12345"
    ups = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Network Management Card",
        f"{SYS}.2.0|6|1.3.6.1.4.1.99999.4",
        "1.3.6.1.2.1.33.1.1.1.0|4|ACME Power",
        "1.3.6.1.2.1.33.1.1.2.0|4|PowerBox 1500",
        "1.3.6.1.2.1.33.1.1.4.0|4|2.1.0",
    )
    assert _kind(ups) == "ups"
    assert (ups.model, ups.version) == ("PowerBox 1500", "2.1.0")
    # A Windows server listing "Microsoft Print To PDF" as its first hrDevice stays a server.
    windows = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Hardware: Intel64 Family 6 - Software: Windows Version 6.3 (Build 17763)",
        f"{SYS}.2.0|6|1.3.6.1.4.1.311.1.1.3.1.2",
        "1.3.6.1.2.1.25.3.2.1.2.1|6|1.3.6.1.2.1.25.3.1.5",
        "1.3.6.1.2.1.25.3.2.1.3.1|4|Microsoft Print To PDF",
    )
    assert _kind(windows) == "server" and windows.version == "Server 2019 (1809)"


async def test_a_mac_vendor_alone_is_weak_evidence(tmp_path: Path) -> None:
    assert evidence_from_vendor("Ubiquiti Inc", False)[0].weight <= 0.2
    # A Ubiquiti MAC on a UniFi switch: the SNMP row says switch, not access point.
    usw = await _identity(
        tmp_path, f"{SYS}.1.0|4|USW-24-PoE, 6.5.59.14777", f"{SYS}.2.0|6|1.3.6.1.4.1.4413"
    )
    assert _kind(usw, vendor="Ubiquiti Inc") == "switch"
    assert usw.model == "USW-24-PoE" and usw.version == "6.5.59.14777"


def test_mdns_that_points_two_ways_is_settled_by_the_model() -> None:
    # A MacBook announces companion-link (phones do too) and AirPlay (speakers do too).
    laptop = (
        MdnsService("_companion-link._tcp.local.", "Anna's MacBook", "anna.local.", 0, (), {}),
        MdnsService("_airplay._tcp.local.", "Anna's MacBook", "anna.local.", 7000, (), {}),
        MdnsService("_device-info._tcp.local.", "Anna's MacBook", "anna.local.", 0, (),
                    {"model": "MacBookPro18,1"}),
    )  # fmt: skip
    for order in (laptop, laptop[::-1]):
        assert _kind(SnmpIdentity(), vendor="Apple, Inc.", mdns=order) == "workstation"


def test_every_probe_oid_belongs_to_one_row_and_rows_name_their_objects() -> None:
    assert len(probe_oids()) == len(set(probe_oids()))
    for rule in RULES:
        for source in rule.sources():
            assert source.meaning, f"{rule.name}: {source} has no MIB object name"


async def test_a_dell_server_running_windows_is_named_by_openmanage(tmp_path: Path) -> None:
    ident = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|Hardware: Intel64 Family 6 - Software: Windows Version 6.3 (Build 20348)",
        f"{SYS}.2.0|6|1.3.6.1.4.1.311.1.1.3.1.2",
        "1.3.6.1.4.1.674.10892.1.300.10.1.9.1|4|PowerEdge R750",
        "1.3.6.1.4.1.674.10892.1.300.10.1.11.1|4|ABC1234",
    )
    assert (ident.model, ident.serial, ident.version) == (
        "Dell PowerEdge R750",
        "ABC1234",
        "Server 2022 (21H2)",
    )
    assert ident.sources["model"].startswith("MIB-Dell-10892 chassisModelName")
    assert ident.platform == "windows" and ident.kind == "server"


async def test_the_device_page_says_which_source_won(tmp_path: Path) -> None:
    from web.pages import _snmp_facts

    ident = await _identity(
        tmp_path,
        f"{SYS}.1.0|4|FUJIFILM Apeos C7580",
        f"{SYS}.2.0|6|1.3.6.1.4.1.297.1.11.93.2.1.2.3.5",
        "1.3.6.1.2.1.43.5.1.1.17.1|4|TC101642170085",
    )
    facts = _snmp_facts({"snmp": ident.as_attrs()}, {})
    assert facts["Model"] == "Apeos C7580" and facts["Model from"] == "sysDescr (1.3.6.1.2.1.1.1.0)"
    assert facts["Serial from"] == "Printer-MIB prtGeneralSerialNumber.1"
    assert "Version from" not in facts
