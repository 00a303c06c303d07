"""mDNS/DNS-SD announcements as real devices of each kind make them.

TXT keys follow what the devices send: the Bonjour Printing Specification for printers
(``ty``, ``product``, ``rp``, ``pdl``, ``usb_MFG``...), Synology DSM's ``_http._tcp``
record (``vendor``, ``model``, ``serial``...), Axis' ``_axis-video._tcp`` (``macaddress``),
Samba's ``_device-info._tcp`` (``model``).
"""

from __future__ import annotations

import uuid

from .model import MdnsService

IPP_PORT = 631
RAW_PRINT_PORT = 9100
LPD_PORT = 515
SMB_PORT = 445
#: _device-info is an icon hint, not a service: it carries no port.
NO_PORT = 0

#: Ports a networked printer listens on: web UI, LPD, IPP, raw (JetDirect) printing.
PRINTER_TCP_PORTS = (80, 443, LPD_PORT, IPP_PORT, RAW_PRINT_PORT)


def printer_services(
    host: str, manufacturer: str, model: str, *, color: bool, lpd_queue: str
) -> tuple[MdnsService, ...]:
    """``_ipp._tcp``, ``_pdl-datastream._tcp`` and ``_printer._tcp`` of one printer.

    ``model`` is the product name without the manufacturer (``MFC-L2710DW series``).
    """
    full = f"{manufacturer} {model}"
    common: dict[str, str | bytes] = {
        "txtvers": "1",
        "qtotal": "1",
        "ty": full,
        "product": f"({full})",
        "usb_MFG": manufacturer,
        "usb_MDL": model,
        "note": "",
        "priority": "0",
        "adminurl": f"http://{host}.local./",
        "Color": "T" if color else "F",
        "Duplex": "T",
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}.local")),
    }
    ipp = {
        **common,
        "rp": "ipp/print",
        "pdl": "application/octet-stream,image/urf,image/pwg-raster,application/pdf",
        "URF": "CP1,IS1,MT1-3-4-5-8,OB10,PQ4,RS300-600,SRGB24,V1.4,W8,DM1",
    }
    raw = {**common, "pdl": "application/vnd.hp-PCL,application/postscript"}
    lpd = {**common, "rp": lpd_queue, "pdl": "application/vnd.hp-PCL,application/postscript"}
    return (
        MdnsService("_ipp._tcp", full, IPP_PORT, ipp, host=host),
        MdnsService("_pdl-datastream._tcp", full, RAW_PRINT_PORT, raw, host=host),
        MdnsService("_printer._tcp", full, LPD_PORT, lpd, host=host),
    )


def synology_services(
    host: str, model: str, serial: str, mac: str, dsm_version: tuple[int, int, int]
) -> tuple[MdnsService, ...]:
    major, minor, build = dsm_version
    web: dict[str, str | bytes] = {
        "vendor": "Synology",
        "model": model,
        "serial": serial,
        "version_major": str(major),
        "version_minor": str(minor),
        "version_build": str(build),
        "admin_port": "5000",
        "secure_admin_port": "5001",
        "mac_address": mac,
    }
    return (
        MdnsService("_http._tcp", host, 5000, web, host=host),
        MdnsService("_smb._tcp", host, SMB_PORT, host=host),
        # DSM advertises itself with the Xserve icon hint for Finder.
        MdnsService("_device-info._tcp", host, NO_PORT, {"model": "Xserve"}, host=host),
    )


def truenas_services(host: str) -> tuple[MdnsService, ...]:
    return (
        MdnsService("_http._tcp", host, 80, host=host),
        MdnsService("_smb._tcp", host, SMB_PORT, host=host),
        MdnsService(
            "_device-info._tcp",
            host,
            NO_PORT,
            {"model": "MacPro7,1@ECOLOR=226,226,224"},
            host=host,
        ),
    )


def samba_services(host: str) -> tuple[MdnsService, ...]:
    """A Linux file server running Samba with its default mDNS registration."""
    return (
        MdnsService("_smb._tcp", host, SMB_PORT, host=host),
        MdnsService("_device-info._tcp", host, NO_PORT, {"model": "MacSamba"}, host=host),
    )


def axis_services(host: str, model: str, mac: str) -> tuple[MdnsService, ...]:
    """Axis names its instances "AXIS <model> - <MAC without colons>"."""
    bare = mac.replace(":", "").upper()
    return (
        MdnsService(
            "_axis-video._tcp", f"AXIS {model} - {bare}", 80, {"macaddress": bare}, host=host
        ),
    )
