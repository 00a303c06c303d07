"""The appliance's configuration: one TOML file, typed and validated at load.

Each section's dataclass lives with the code that uses it (``core/settings/polling.py`` ...);
this module composes them. An empty file is a valid configuration: every setting has a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.report.hours import DAYS, BusinessHours, HoursError, business_hours, parse_clock
from core.schema import ConfigError, load_dataclass, section, setting
from core.settings.alerting import AlertingSettings
from core.settings.discovery import DiscoverySettings
from core.settings.hardware import HardwareSettings
from core.settings.polling import PollingSettings
from core.settings.provisioning import ProvisioningSettings
from core.settings.snmp import SnmpSettings
from core.settings.store import StoreSettings
from core.settings.topology import TopologySettings
from core.settings.updates import UpdateSettings
from core.settings.uplink import UplinkSettings
from core.settings.web import WebSettings

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]


def _timezone(value: str) -> str | None:
    try:
        business_hours(value, "08:00", "18:00", (), ())
    except HoursError as exc:
        return str(exc)
    return None


def _clock(value: str) -> str | None:
    try:
        parse_clock(value, "")
    except HoursError as exc:
        return str(exc).removeprefix(": ")
    return None


def _days(value: tuple[str, ...]) -> str | None:
    bad = [d for d in value if d not in DAYS]
    return f"{bad[0]!r} is not one of {', '.join(DAYS)}" if bad else None


def _dates(value: tuple[str, ...]) -> str | None:
    try:
        business_hours("UTC", "08:00", "18:00", (), value)
    except HoursError as exc:
        return str(exc).removeprefix("holidays: ")
    return None


@dataclass(frozen=True)
class BusinessHoursSettings:
    """When the client's office is open (the monthly report's availability in business hours);
    the same words as home's notification settings."""

    start: str = setting("08:00", check=_clock, help="opening time, HH:MM local time")
    end: str = setting("18:00", check=_clock, help="closing time, HH:MM local time")
    days: tuple[str, ...] = setting(
        DAYS[:5], check=_days, help='open days, e.g. ["mon", "tue", "wed", "thu", "fri"]'
    )

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}; swap them")


@dataclass(frozen=True)
class SiteSettings:
    name: str = setting("", help="the client site's name, shown on the status page")
    timezone: str = setting("UTC", check=_timezone, help='IANA time zone, e.g. "Europe/Berlin"')
    business_hours: BusinessHoursSettings = section(BusinessHoursSettings)
    holidays: tuple[str, ...] = setting(
        (), check=_dates, help='whole days the office is closed, e.g. ["2026-12-25"]'
    )

    def hours(self) -> BusinessHours:
        """The business hours as the report computes with them."""
        b = self.business_hours
        return business_hours(self.timezone, b.start, b.end, b.days, self.holidays)


@dataclass(frozen=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = setting("info", help="least severe level")


@dataclass(frozen=True)
class Config:
    site: SiteSettings = section(SiteSettings)
    log: LogSettings = section(LogSettings)
    store: StoreSettings = section(StoreSettings)
    web: WebSettings = section(WebSettings)
    snmp: SnmpSettings = section(SnmpSettings)
    discovery: DiscoverySettings = section(DiscoverySettings)
    polling: PollingSettings = section(PollingSettings)
    alerting: AlertingSettings = section(AlertingSettings)
    topology: TopologySettings = section(TopologySettings)
    uplink: UplinkSettings = section(UplinkSettings)
    hardware: HardwareSettings = section(HardwareSettings)
    provisioning: ProvisioningSettings = section(ProvisioningSettings)
    updates: UpdateSettings = section(UpdateSettings)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and validate TOML text; raise :class:`ConfigError` naming every bad key."""
    try:
        table: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [f"{source}: not valid TOML: {exc}. Check quotes, brackets and '=' on that line."]
        ) from None
    return load_dataclass(Config, table)


def load_config(path: str | Path) -> Config:
    """Read, parse and validate the configuration file at ``path``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: config file not found; check the path, or create an empty file to use "
                "the defaults"
            ]
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{path}: is a directory, not a config file; name the TOML file"]
        ) from None
    except PermissionError:
        raise ConfigError(
            [
                f"{path}: permission denied reading the config file; make it readable by the user "
                "running outpost (e.g. chmod 640 and group outpost)"
            ]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8"]
        ) from None
    return parse_config(text, source=str(path))
