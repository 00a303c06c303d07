"""Notification benchmark: how fast one home process turns alerts into delivered messages.

Figures, each against a peer measured in the same run:
  latency: an alert POSTed to the real home process (signed batch over TLS, ingest commit with
    its outbox rows) until the mail is in the receiving SMTP server's hands (aiosmtpd on
    loopback), p50/p95 over LATENCY_ALERTS alerts one at a time, group wait set to 0; against
    a bare smtplib send of the same kind of mail from this process (no home, no outbox).
  throughput: THROUGHPUT_ALERTS alerts POSTed in batches of 50 to the real home process, each
    routed to a signed webhook on loopback; messages delivered per second until the last one
    arrived; against the same webhook sender called directly from this process without the
    outbox (no durability, no delivery log).
The receivers run in this process; "alert on the box" is approximated by the POST of its
batch (the box's own uplink delay is measured by bench.uplink).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
import ssl
import statistics
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller

from core.schema import Secret
from core.wire.protocol import INGEST_PATH, encode
from home.ca import init_ca, issue_cert
from home.db import HomeDB
from home.notify.channels import send_webhook
from home.notify.config import WebhookChannel
from home.notify.messages import trial_message
from provisioning.identity import load_or_create
from simsite.harness import processes
from simsite.harness.ports import free_tcp_port

LATENCY_ALERTS = 30
THROUGHPUT_ALERTS = 1000
BATCH = 50
SECRET = "bench-webhook-secret"


class _Mailbox:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # subject -> monotonic arrival

    def find(self, subject_end: str) -> float | None:
        return next((v for k, v in self.arrived.items() if k.endswith(subject_end)), None)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        for line in envelope.content.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                self.arrived[line[9:].decode()] = time.monotonic()
        return "250 OK"


class _Hooks:
    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        self.last = time.monotonic()
        return web.json_response({"ok": True})


def _config(tmp: Path, smtp_port: int, hook_port: int) -> Path:
    (tmp / "hook.secret").write_text(SECRET + "\n")
    text = f"""
[notify]
group_wait_s = 0
offline_after_s = 0
[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "outpost@msp.example"
to = ["helpdesk@msp.example"]
[notify.channels.hook]
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
secret_file = "hook.secret"
[[notify.routes]]
keys = ["lat.*"]
channels = ["mail"]
[[notify.routes]]
keys = ["tput.*"]
channels = ["hook"]
"""
    path = tmp / "home.toml"
    path.write_text(text)
    return path


@contextlib.contextmanager
def _home(tmp: Path, config: Path) -> Any:
    init_ca(tmp / "ca")
    issue_cert(tmp / "ca", tmp, ["127.0.0.1"])
    port = free_tcp_port()
    argv = [*processes.HOME, "run", "--data-dir", str(tmp), "--config", str(config)]
    argv += ["--listen", f"127.0.0.1:{port}"]
    with open(tmp / "home.log", "ab") as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
    try:
        assert proc.stdout is not None
        if b"listening" not in proc.stdout.readline():
            raise RuntimeError((tmp / "home.log").read_text()[-2000:])
        yield f"https://127.0.0.1:{port}"
    finally:
        processes.stop(proc)


def _alert(seq: int, key: str) -> dict[str, Any]:
    body = {"key": key, "id": seq, "state": "open", "severity": "major", "message": key}
    return {"seq": seq, "lane": 0, "kind": "alert", "ts": time.time(), "synced": True,
            "body": body}  # fmt: skip


async def _post(session: aiohttp.ClientSession, url: str, identity: Any, doc: Any) -> None:
    body = encode(doc)
    headers = {"Content-Encoding": "gzip", **identity.sign_headers("POST", INGEST_PATH, body)}
    async with session.post(url + INGEST_PATH, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"home answered {resp.status}: {await resp.text()}")


async def _until(done: Any, timeout_s: float = 300.0) -> None:
    """Poll ``done()`` (the receivers run on other threads too) until true or time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        await asyncio.sleep(0.002)
    raise RuntimeError(f"not done within {timeout_s:.0f} s")


def _bare_mail(port: int, n: int) -> float:
    started = time.perf_counter()
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "a@msp.example", "b@msp.example", f"bare {n}"
    mail.set_content("x")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="msp.example", timeout=10) as client:
        client.send_message(mail)
    return time.perf_counter() - started


async def _run(tmp: Path) -> list[str]:
    mailbox, hooks = _Mailbox(), _Hooks()
    smtp_port = free_tcp_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port, server_hostname="mx")
    controller.start()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    hook_port = free_tcp_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    identity = load_or_create(tmp / "identity")
    try:
        db = HomeDB(tmp / "home.db")
        db.open_sync()
        db.register_sync(identity.appliance_id, identity.public_text, "Bench")
        db.close_sync()
        with _home(tmp, _config(tmp, smtp_port, hook_port)) as url:
            context = ssl.create_default_context(cafile=str(tmp / "ca" / "ca.pem"))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s:
                latencies = []
                seq = 0
                for n in range(LATENCY_ALERTS):
                    seq += 1
                    key = f"lat.{n}"
                    began = time.monotonic()
                    doc = {"v": 1, "stream": "b", "records": [_alert(seq, key)]}
                    await _post(s, url, identity, doc)
                    subject_end = f"Bench: {key}"
                    await _until(lambda end=subject_end: mailbox.find(end) is not None)
                    arrived = mailbox.find(subject_end) or 0.0
                    latencies.append(arrived - began)
                began = time.monotonic()
                for first in range(0, THROUGHPUT_ALERTS, BATCH):
                    records = []
                    for n in range(first, first + BATCH):
                        seq += 1
                        records.append(_alert(seq, f"tput.{n}"))
                    await _post(s, url, identity, {"v": 1, "stream": "b", "records": records})
                await _until(lambda: hooks.count >= THROUGHPUT_ALERTS)
                home_rate = THROUGHPUT_ALERTS / (hooks.last - began)
        bare = sorted(
            await asyncio.to_thread(lambda: [_bare_mail(smtp_port, n) for n in range(30)])
        )
        channel = WebhookChannel("hook", f"http://127.0.0.1:{hook_port}/hook", Secret(SECRET))
        message = trial_message("hook", time.time())
        hooks.count = 0
        began = time.monotonic()
        for _first in range(0, THROUGHPUT_ALERTS, BATCH):
            await asyncio.gather(*(send_webhook(channel, message, f"m{n}") for n in range(BATCH)))
        direct_rate = THROUGHPUT_ALERTS / (time.monotonic() - began)
    finally:
        await runner.cleanup()
        controller.stop()
    lat = sorted(latencies)
    p50, p95 = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
    bare50 = statistics.median(bare)
    return [
        f"alert POSTed -> mail received (group wait 0): p50 {p50 * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms over {len(lat)}; bare smtplib send p50 {bare50 * 1000:.1f} ms"
        f" ({p50 / bare50:.1f}x)",
        f"notifications delivered by one home process (webhook, loopback): {home_rate:.0f}/s"
        f" for {THROUGHPUT_ALERTS}; direct sends without the outbox: {direct_rate:.0f}/s"
        f" ({home_rate / direct_rate:.2f}x)",
    ]


def run() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    for line in run():
        print(line)
    print(json.dumps({"ok": True}))
