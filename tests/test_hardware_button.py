"""The button's hold bands over the simulated backend, and the factory reset's effect."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.messages import IdentifyRequested
from core.status import StatusKey
from hardware.backends import SimBackend
from hardware.button import Action, action_for_hold, feedback_for_hold
from hardware.leds import PanelState
from hardware.service import HardwareService
from services.store.records import Event, insert_event
from tests.web_support import appliance, make_config


@pytest.mark.parametrize(
    ("held", "action"),
    [
        (0.01, Action.NONE),
        (0.2, Action.STATUS),
        (2.9, Action.STATUS),
        (4.0, Action.NONE),
        (5.0, Action.REBOOT),
        (9.9, Action.REBOOT),
        (10.0, Action.FACTORY_RESET),
        (19.9, Action.FACTORY_RESET),
        (20.0, Action.CANCEL),
        (60.0, Action.CANCEL),
    ],
)
def test_bands(held: float, action: Action) -> None:
    assert action_for_hold(held) is action


def test_feedback_while_held() -> None:
    assert feedback_for_hold(1.0) is None
    assert feedback_for_hold(6.0) is PanelState.REBOOT_ARMED
    assert feedback_for_hold(12.0) is PanelState.RESET_ARMED
    assert feedback_for_hold(25.0) is None  # past the reset band: back to normal, cancel


async def _service(
    tmp_path: Path, ctx: object, confirm_s: float = 0.3
) -> tuple[HardwareService, SimBackend]:
    backend = SimBackend()
    service = HardwareService(ctx, backend=backend, confirm_s=confirm_s)  # type: ignore[arg-type]
    await service.setup()
    return service, backend


def exists(path: Path) -> bool:
    return path.exists()


def entries(path: Path) -> list[Path]:
    return list(path.iterdir())


@pytest.fixture
def config_paths(tmp_path: Path) -> tuple[Any, Path]:
    identity = tmp_path / "identity"
    identity.mkdir()
    (identity / "device.key").write_text("PRIVATE KEY")
    (identity / "claim").mkdir()
    (identity / "claim" / "token").write_text("x")
    state = tmp_path / "provisioning"
    state.mkdir()
    (state / "claim.json").write_text('{"claimed": true, "site": "Acme"}')
    config = make_config()
    config = replace(
        config,
        provisioning=replace(config.provisioning, identity_dir=str(identity), state_dir=str(state)),
    )
    return config, identity


async def test_short_press_shows_status_and_records_event(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, _ = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        service, backend = await _service(tmp_path, ctx)
        assert (await service.step()).state is PanelState.HEALTHY
        backend.press(0.3)
        assert (await service.step()).state is PanelState.IDENTIFY
        assert backend.leds == {"power": "blink", "uplink": "blink", "alert": "blink"}
        assert ctx.status.snapshot()["identify"] is True
        await asyncio.sleep(0.05)
        rows = await ctx.store.query("SELECT kind FROM events")
        assert {"kind": "panel.button"} in rows
        assert service.actions == [Action.STATUS] and service.reboots == []
        await service.teardown()


async def test_gap_and_long_holds_do_nothing(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, identity = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        service, backend = await _service(tmp_path, ctx)
        backend.press(4.0)
        backend.press(25.0)
        backend.press(0.01)
        await service.step()
        await asyncio.sleep(0.4)
        await service.step()
        assert service.actions == [Action.NONE, Action.CANCEL, Action.NONE]
        assert service.reboots == [] and exists(identity / "device.key")
        await service.teardown()


async def test_reboot_band_reboots_through_the_injected_action(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, identity = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        service, backend = await _service(tmp_path, ctx)
        backend.press(7.0)
        for _ in range(20):
            if service.reboots:
                break
            await asyncio.sleep(0.02)
        assert len(service.reboots) == 1
        assert exists(identity / "device.key")  # a reboot wipes nothing
        assert {"kind": "panel.reboot"} in await ctx.store.query("SELECT kind FROM events")
        await service.teardown()


async def test_hold_feedback_shows_the_band_reached(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, _ = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        service, backend = await _service(tmp_path, ctx)
        start = backend.clock.monotonic()  # the clock the service reads too
        # White box: the GPIO edge callback, as the pin would call it; held for 6 s already.
        backend._handler(True, start - 6.0)  # type: ignore[misc]  # noqa: SLF001
        assert (await service.step()).state is PanelState.REBOOT_ARMED
        assert backend.leds["power"] == "fast_blink"
        service.monitor.pressed_at = start - 11.0
        assert (await service.step()).state is PanelState.RESET_ARMED
        service.monitor.pressed_at = start - 21.0
        assert (await service.step()).state is PanelState.HEALTHY
        backend.release()
        assert service.actions == [Action.CANCEL]
        await service.teardown()


async def test_factory_reset_wipes_identity_and_data_after_confirm(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, identity = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        await ctx.store.write(lambda tx: insert_event(tx, Event("device.joined", message="x")))
        db = Path(ctx.config.store.path)
        assert exists(db)
        service, backend = await _service(tmp_path, ctx, confirm_s=0.3)
        backend.press(12.0)
        # The confirm blink comes first; nothing is wiped during it.
        assert (await service.step()).state is PanelState.RESET_CONFIRM
        assert backend.leds == {
            "power": "fast_blink",
            "uplink": "fast_blink",
            "alert": "fast_blink",
        }
        assert exists(identity / "device.key") and exists(db)
        await asyncio.sleep(0.35)
        await service.step()
        for _ in range(50):
            if service.reboots:
                break
            await asyncio.sleep(0.02)
        assert service.reboots, "the factory reset must end with a reboot"
        assert exists(identity) and entries(identity) == []
        state = Path(ctx.config.provisioning.state_dir)
        assert exists(state) and entries(state) == [], "claim and signed configs are forgotten"
        assert not exists(db)
        assert not exists(Path(str(db) + "-wal"))
        # The recorded LED history shows the confirm blink before the wipe.
        assert any(c.pattern == "fast_blink" and c.led == "uplink" for c in backend.history)
        await service.teardown()


async def test_press_during_confirm_cancels_the_reset(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, identity = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        service, backend = await _service(tmp_path, ctx, confirm_s=0.3)
        backend.press(15.0)
        assert (await service.step()).state is PanelState.RESET_CONFIRM
        backend.press(0.2)  # "no, stop"
        await asyncio.sleep(0.4)
        assert (await service.step()).state is PanelState.HEALTHY
        assert service.actions == [Action.FACTORY_RESET, Action.CANCEL]
        assert exists(identity / "device.key") and exists(Path(ctx.config.store.path))
        assert service.reboots == []
        await service.teardown()


async def test_identify_request_from_the_bus_and_panel_status(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, _ = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        ctx.status.publish(StatusKey.UPLINK_STATE, "buffering")
        service, _ = await _service(tmp_path, ctx)
        assert (await service.step()).state is PanelState.UPLINK_DOWN
        assert ctx.status.snapshot()["panel"] == {
            "state": "uplink_down",
            "leds": {"power": "on", "uplink": "blink", "alert": "off"},
        }
        ctx.bus.publish(IdentifyRequested(duration_s=0.2, requested_by="test"))
        assert (await service.step()).state is PanelState.IDENTIFY
        await asyncio.sleep(0.25)
        assert (await service.step()).state is PanelState.UPLINK_DOWN
        assert ctx.status.snapshot()["identify"] is False
        await service.teardown()


async def test_open_alerts_from_the_store_light_the_alert_led(
    tmp_path: Path, config_paths: tuple[Any, Path]
) -> None:
    config, _ = config_paths
    async with appliance(tmp_path, config) as ctx:
        ctx.status.publish(StatusKey.PHASE, "running")
        await ctx.store.write(
            lambda tx: tx.conn.execute(
                "INSERT INTO alerts (key, rule, severity, state, opened_ts)"
                " VALUES ('k', 'device.down', 'major', 'open', 1)"
            )
        )
        service, backend = await _service(tmp_path, ctx)
        assert (await service.step()).state is PanelState.MAJOR_ALERT
        assert backend.leds["alert"] == "on"
        await service.teardown()
