"""A real SMTP server (aiosmtpd) for tests that run home inside a simulated site's namespace:
``python -m tests.notify_mailsink DIR PORT`` listens on 127.0.0.1:PORT of the namespace it runs
in, writes every accepted mail to DIR/NNNN.eml (via a temporary name, so a reader never sees
half a mail) and prints "ready" once it listens. Stopped by a signal."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Maildir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            name = f"{self.count:04d}.eml"
        temporary = self.directory / f".{name}"
        temporary.write_bytes(envelope.original_content or envelope.content)
        os.replace(temporary, self.directory / name)
        return "250 OK"


def main() -> None:
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        Maildir(directory), hostname="127.0.0.1", port=port, server_hostname="mx.test"
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
