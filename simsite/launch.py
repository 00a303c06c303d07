"""`make run`: the appliance against the demo site, with its status page and a local MSP home.

As root: the demo office LAN is built from network namespaces; the MSP's home server runs on
the "internet" side behind the site's gateway; the appliance runs in its own namespace on the
LAN, discovers and polls the site and phones home over TLS. Both pages are forwarded to the
host's loopback through Unix sockets (nothing is added to the host's network).
Not root: the loopback fallback (devices on 127.18.0.x, no ARP or mDNS), everything on the host.
Ctrl-C (or SIGTERM) stops the appliance, the home server and the site, in that order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from provisioning.identity import load_or_create
from simsite.base import SiteBase
from simsite.demo import demo_site
from simsite.harness.ports import free_tcp_port_preferring
from simsite.harness.processes import stop
from simsite.loopback import LoopbackSite
from simsite.portal import tcp_to_unix
from simsite.site import Site

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SITE_NAME = "Demo Dental Practice"
HOME_PORT = 8443
APPLIANCE_WEB_PORT = 8080
LOOPBACK_HOME = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 8.0  # SIGTERM, then SIGKILL of the process group
DEMO_POLL_INTERVAL_S = 30.0
DEMO_SWEEP_INTERVAL_S = 120.0
DEMO_SYNC_INTERVAL_S = 2.0  # how often the unclaimed box says hello (30 s on a real box)


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def _appliance_config(
    work: Path, site: SiteBase, *, in_namespaces: bool, home_url: str, lan: str
) -> Path:
    lines = [
        "[site]",
        f'name = "{SITE_NAME}"',
        "[store]",
        f'path = "{work / "appliance" / "outpost.db"}"',
        "[web]",
        f'listen = "{"0.0.0.0" if in_namespaces else "127.0.0.1"}"',
        f"port = {APPLIANCE_WEB_PORT if in_namespaces else free_tcp_port_preferring(18080)}",
        f'unix_socket = "{work / "web.sock"}"',
        "[[snmp.credentials]]",
        'name = "public-v2c"',
        'version = "2c"',
        'community = "public"',
        # The demo file server runs net-snmp with this SNMPv3 user (simsite/demo.py).
        "[[snmp.credentials]]",
        'name = "office-v3"',
        'version = "3"',
        'user = "outpost"',
        'auth_protocol = "SHA"',
        'auth_key = "demo-auth-pass"',
        'priv_protocol = "AES"',
        'priv_key = "demo-priv-pass"',
        "[discovery]",
        f"enabled = {'true' if in_namespaces else 'false'}",
        f'subnets = ["{lan}"]',
        f"sweep_interval_s = {DEMO_SWEEP_INTERVAL_S}",
        "[polling]",
        f"interval_s = {DEMO_POLL_INTERVAL_S}",
        "[uplink]",
        f'url = "{home_url}"',
        f'ca_file = "{work / "home" / "ca.pem"}"',
        "[provisioning]",
        f'identity_dir = "{work / "appliance" / "identity"}"',
        f'state_dir = "{work / "appliance" / "provisioning"}"',
        f'config_file = "{work / "outpost.toml"}"',
        f"sync_interval_s = {DEMO_SYNC_INTERVAL_S}",
        # A remote "reboot" must never reboot the developer's machine.
        "reboot_command = []",
        "[updates]",
        f'mailbox_dir = "{work / "appliance" / "update"}"',
        "[hardware]",
        'backend = "sim"',
    ]
    if not in_namespaces:
        # No ARP or mDNS on loopback: the demo devices are added by hand, as a technician would
        # add devices discovery cannot see.
        for dev in site.devices:
            lines += [
                "[[polling.devices]]",
                f'name = "{dev.name}"',
                f'ip = "{site.ip_of(dev.name)}"',
                f'kind = "{dev.role}"',
            ]
    path = work / "outpost.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{tail}")
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {READY_TIMEOUT_S:.0f} s; see {log}")


def _home(
    work: Path, site: Site | LoopbackSite, in_namespaces: bool
) -> tuple[subprocess.Popen[bytes], str]:
    home_dir = work / "home"
    home_dir.mkdir(parents=True)
    host = site.spec.msp_ip if in_namespaces else LOOPBACK_HOME
    port = HOME_PORT if in_namespaces else free_tcp_port_preferring(18443)
    home = _tool("outpost-home")
    subprocess.run(
        [home, "init-ca", "--data-dir", str(home_dir)], check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [home, "issue-cert", "--data-dir", str(home_dir), "--name", host],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # The MSP's signing key: the box learns it when claimed and trusts signed config with it.
    subprocess.run(
        [home, "init-signing", "--data-dir", str(home_dir)], check=True, stdout=subprocess.DEVNULL
    )
    _console_user(home, home_dir)
    log = work / "home.log"
    proc = site.popen_in(
        site.msp_ns,
        [home, "run", "--data-dir", str(home_dir), "--listen", f"{host}:{port}"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    _wait_for("the home server", lambda: "listening" in log.read_text(errors="replace"), proc, log)
    return proc, f"https://{host}:{port}"


def _console_user(home: str, home_dir: Path) -> None:
    """The demo's MSP console user ``demo`` (admin) with a random password in
    ``console.password``, and a read-only API token in ``console.token`` (both mode 600): home
    serves no console page without a user, and has no default password."""
    password = home_dir / "console.password"
    password.write_text(secrets.token_urlsafe(12) + "\n")
    password.chmod(0o600)
    where = ["--data-dir", str(home_dir)]
    subprocess.run(
        [home, "create-user", "demo", "--role", "admin", "--password-file", str(password), *where],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    made = subprocess.run(
        [home, "create-token", "demo", "--label", "make run", "--role", "read-only", *where],
        check=True,
        capture_output=True,
        text=True,
    )
    token = home_dir / "console.token"
    token.write_text(json.loads(made.stdout)["token"] + "\n")
    token.chmod(0o600)


def _outpost_status(config: Path) -> dict[str, object]:
    answer = subprocess.run(
        [_tool("outpost"), "status", "--config", str(config)], capture_output=True, text=True
    )
    status: dict[str, object] = json.loads(answer.stdout) if answer.returncode == 0 else {}
    return status


def _claim(work: Path, config: Path, app_proc: subprocess.Popen[bytes], app_log: Path) -> str:
    """Claim the fresh box the way an MSP technician does: read the code it shows (here from
    `outpost status`, on a real box from its label or status page), then `outpost-home claim`."""
    home_dir = work / "home"
    code = ""

    def have_code() -> bool:
        nonlocal code
        code = str(_outpost_status(config).get("claim_code", ""))
        return bool(code)

    _wait_for("the appliance's claim code", have_code, app_proc, app_log)

    def claimed() -> bool:
        # Home can match the code only once the box has said hello with it.
        answer = subprocess.run(
            [
                _tool("outpost-home"),
                "claim",
                code,
                "--site",
                SITE_NAME,
                "--data-dir",
                str(home_dir),
            ],
            capture_output=True,
            text=True,
        )
        return answer.returncode == 0

    _wait_for("home to know the box's claim code", claimed, app_proc, app_log)
    _wait_for(
        "the box to learn its site",
        lambda: _outpost_status(config).get("provisioning") == "claimed",
        app_proc,
        app_log,
    )
    return load_or_create(work / "appliance" / "identity").appliance_id


async def _forward_until_stopped(
    forwards: list[tuple[int, Path]], procs: dict[str, subprocess.Popen[bytes]], banner: str
) -> str:
    servers = [await tcp_to_unix("127.0.0.1", port, str(path)) for port, path in forwards]
    # Only now are the addresses in the banner listening: print them.
    print(banner, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reason = "stopped"
    try:
        while not stop.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    reason = f"{name} exited with code {proc.returncode}"
                    stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        for server in servers:
            server.close()
    return reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--loopback", action="store_true", help="force the loopback fallback")
    parser.add_argument("--workdir", default=str(REPO / "run"), help="state of this run")
    args = parser.parse_args(argv)
    in_namespaces = os.geteuid() == 0 and not args.loopback
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)  # a demo starts fresh every time
    work.mkdir(parents=True)
    spec = demo_site()
    site: Site | LoopbackSite = Site(spec) if in_namespaces else LoopbackSite(spec)
    if not in_namespaces:
        print("using the loopback fallback: devices on 127.18.0.x, no namespaces, ARP or mDNS")
    print("building the simulated site ...", flush=True)
    with site:
        home_proc, home_url = _home(work, site, in_namespaces)
        config = _appliance_config(
            work, site, in_namespaces=in_namespaces, home_url=home_url, lan=spec.lan
        )
        app_log = work / "appliance.log"
        app_proc = site.popen_in(
            site.app_ns,
            [_tool("outpost"), "run", "--config", str(config)],
            stdout=app_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        web_sock = work / "web.sock"
        _wait_for("the appliance", web_sock.exists, app_proc, app_log)
        appliance_id = _claim(work, config, app_proc, app_log)
        forwards = [(free_tcp_port_preferring(8080), web_sock)]
        if in_namespaces:
            home_sock = work / "home.sock"
            portal = site.popen_in(
                site.msp_ns,
                [
                    sys.executable,
                    "-m",
                    "simsite.portal",
                    "--unix",
                    str(home_sock),
                    "--target",
                    f"{spec.msp_ip}:{HOME_PORT}",
                ],
                cwd=str(REPO),
            )
            _wait_for("the home portal", home_sock.exists, portal, work / "home.log")
            forwards.append((free_tcp_port_preferring(HOME_PORT), home_sock))
            fleet = f"https://127.0.0.1:{forwards[1][0]}/fleet"
        else:
            fleet = f"{home_url}/fleet"
        banner = (
            f"\nOutpost is running against the simulated site '{SITE_NAME}'.\n"
            f"  status page:  http://127.0.0.1:{forwards[0][0]}/\n"
            f"  MSP fleet:    {fleet}  (certificate from the demo CA {work / 'home' / 'ca.pem'})\n"
            f"  MSP console:  user demo, password in {work / 'home' / 'console.password'}\n"
            f"  appliance:    {appliance_id}, claimed for '{SITE_NAME}' by its claim code\n"
            f"  logs:         {app_log}  {work / 'home.log'}\n"
            + (f"  namespaces:   {site.prefix}* (ip netns list)\n" if in_namespaces else "")
            + "Ctrl-C stops everything.\n"
        )
        reason = asyncio.run(
            _forward_until_stopped(forwards, {"the appliance": app_proc, "home": home_proc}, banner)
        )
        print(f"\n{reason}; stopping ...", flush=True)
        stop(app_proc, grace_s=STOP_GRACE_S)
        stop(home_proc, grace_s=STOP_GRACE_S)
    print("simulated site torn down.")
    return 0 if reason == "stopped" else 1


if __name__ == "__main__":
    sys.exit(main())
