"""Process-wide safety nets: stop every live site on exit, SIGTERM and during teardown.

* ``atexit`` stops sites a script forgot to stop (normal exit, uncaught exception).
* SIGTERM, by default, kills Python without unwinding: while a site lives and nobody else
  claimed SIGTERM, it is turned into ``SystemExit(143)`` so ``with`` blocks and fixtures
  tear down as they do on Ctrl-C.
* While a site tears down, SIGINT/SIGTERM are held back (blocked in the main thread) so a
  second Ctrl-C cannot cut the teardown in half; they are delivered right after it.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import ClassVar, Protocol

#: Exit status of a process ended by SIGTERM, shell convention (128 + signal number).
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


class Stoppable(Protocol):
    def stop(self) -> None: ...


class _State:
    # Strong references on purpose: a site nobody refers to any more must still be stopped
    # at exit (a failed test drops its site object long before the interpreter ends).
    live: ClassVar[list[Stoppable]] = []
    installed_handler: ClassVar[bool] = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGTERM_EXIT_STATUS)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def register(site: Stoppable) -> None:
    if site not in _State.live:
        _State.live.append(site)
    if (
        not _State.installed_handler
        and _in_main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)
        _State.installed_handler = True


def unregister(site: Stoppable) -> None:
    if site in _State.live:
        _State.live.remove(site)
    if not _State.live and _State.installed_handler and _in_main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _State.installed_handler = False


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM for the duration (main thread only; elsewhere a no-op)."""
    if not _in_main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@atexit.register
def _stop_all() -> None:
    for site in list(_State.live):
        with contextlib.suppress(Exception):
            site.stop()
