"""`serve --workers N`: N worker processes accepting webhooks on one listening socket.

The parent binds the port once (a busy port is one clear error, as with one process), then starts N
`serve` children that inherit the socket and accept from it in turn (the kernel hands each connection
to one of them): the pre-fork model of gunicorn and nginx. The workers share a PostgreSQL database,
which keeps them correct together (per-citizen turn lock, deduplication, claimed outbox rows).

The parent only supervises: SIGTERM or Ctrl+C is passed on to every worker, which drains as a single
`serve` does; a worker that dies while serving (killed, out of memory) is started again, and its
undelivered replies are sent by the others. A worker that fails at once with an error (bad content, no
database, a wrong token) stops them all with its own one-line error and exit code: a restart would fail
the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

logger = logging.getLogger(__name__)

# A worker that exits with an error (not killed by a signal) sooner than this after starting failed to
# start: the whole group stops.
START_GRACE_SECONDS: Final = 5.0
# How often the parent looks at its workers.
POLL_SECONDS: Final = 0.2


def supervise(sock: socket.socket, workers: int, child_args: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``workers`` children of ``python -m bot serve <child_args> --listen-fd FD`` (with ``env`` added to
    their environment) until asked to stop."""
    fd = sock.fileno()
    os.set_inheritable(fd, True)
    command = [sys.executable, "-m", "bot", "serve", *child_args, "--listen-fd", str(fd)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def start() -> tuple[subprocess.Popen[bytes], float]:
        # (our own interpreter and arguments: nothing from outside reaches the command line)
        return subprocess.Popen(command, pass_fds=(fd,), env={**os.environ, **env}), time.monotonic()  # noqa: S603

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    children: dict[int, subprocess.Popen[bytes]] = {}
    started: dict[int, float] = {}
    try:
        for slot in range(workers):
            children[slot], started[slot] = start()
        print(
            f"Đã khởi động {workers} tiến trình nhận webhook (pid {', '.join(str(c.pid) for c in children.values())})."
        )
        while children:
            time.sleep(POLL_SECONDS)
            for slot, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                del children[slot]
                if stopping:
                    continue
                if code > 0 and time.monotonic() - started[slot] < START_GRACE_SECONDS:
                    # It could not start (its own error line is above): the others would fail the same way.
                    stop(signal.SIGTERM, None)
                    _wait(children.values())
                    return code or 1
                logger.warning("worker %d (pid %d) exited with %s; starting it again", slot, child.pid, code)
                children[slot], started[slot] = start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if children:
            stop(signal.SIGTERM, None)
            _wait(children.values())
    return 0


def _wait(children: Iterable[subprocess.Popen[bytes]]) -> None:
    for child in list(children):
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
