"""sd_notify over a real Unix datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.status import StatusKey
from hardware.watchdog import Notifier, WatchdogService, make_watchdog
from tests.web_support import appliance


class FakeSystemd:
    """Receives notify datagrams on its own thread and time-stamps them."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG=1" in m.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    path = str(tmp_path / "notify.sock")
    fake = FakeSystemd(path)
    try:
        yield fake, path
    finally:
        fake.close()


async def _wait_for(predicate: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_ready_pings_and_a_blocked_loop_stops_them(
    tmp_path: Path, systemd: tuple[FakeSystemd, str]
) -> None:
    fake, path = systemd
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}
    async with appliance(tmp_path) as ctx:
        service = WatchdogService(ctx, Notifier(env))
        await service.setup()
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0.15)
        assert fake.messages == [], "READY must wait until every service has started"
        ctx.status.publish(StatusKey.PHASE, "running")
        await _wait_for(lambda: len(fake.pings()) >= 4)
        first = fake.messages[0][1].splitlines()
        assert first[0] == "READY=1" and first[1].startswith("STATUS=")
        gaps = [b - a for a, b in zip(fake.pings(), fake.pings()[1:], strict=False)]
        assert all(0.05 < g < 0.2 for g in gaps), gaps  # every WATCHDOG_USEC / 2 = 0.1 s
        # Block the event loop (a wedged handler): the pings must stop while it is blocked.
        before = len(fake.pings())
        blocked_at = time.monotonic()
        time.sleep(0.6)  # deliberately blocking the loop  # noqa: ASYNC251
        unblocked_at = time.monotonic()
        during = [t for t in fake.pings()[before:] if blocked_at + 0.01 < t < unblocked_at]
        assert during == [], "a blocked loop must not keep systemd's watchdog fed"
        await _wait_for(lambda: any(t > unblocked_at for t in fake.pings()))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.teardown()
        await _wait_for(lambda: fake.messages[-1][1] == "STOPPING=1")


async def test_abstract_socket_and_foreign_watchdog_pid(tmp_path: Path) -> None:
    name = f"outpost-test-{os.getpid()}"
    fake = FakeSystemd("\0" + name)
    try:
        notifier = Notifier(
            {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
        )
        assert notifier.watchdog_s is None  # the watchdog is meant for another process
        assert notifier.send("READY=1")
        await _wait_for(lambda: fake.messages != [])
        assert fake.messages[0][1] == "READY=1"
        notifier.close()
    finally:
        fake.close()


async def test_not_under_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.send("READY=1")
    async with appliance(tmp_path) as ctx:
        assert make_watchdog(ctx) is None


def test_the_real_appliance_notifies_systemd(
    tmp_path: Path, systemd: tuple[FakeSystemd, str]
) -> None:
    """`outpost run` under a stand-in systemd: READY with a status line, keep-alives, STOPPING."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.web_support import free_port

    fake, path = systemd
    config = tmp_path / "outpost.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "outpost.db"}"\n'
        f'[provisioning]\nidentity_dir = "{tmp_path / "identity"}"\n'
        f'[web]\nlisten = "127.0.0.1"\nport = {free_port()}\n'
        "[discovery]\nenabled = false\n[polling]\nenabled = false\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "run", "--config", str(config)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while len(fake.pings()) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"no keep-alives: {fake.messages}"
            time.sleep(0.05)
        ready = [m for _, m in fake.messages if m.startswith("READY=1")]
        assert len(ready) == 1 and "STATUS=panel " in ready[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0
    deadline = time.monotonic() + 2
    while fake.messages[-1][1] != "STOPPING=1" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.messages[-1][1] == "STOPPING=1"
