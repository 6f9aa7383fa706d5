"""Zero-downtime shutdown: SIGTERM drains a worker instead of stopping it at once.

The sequence, per serving process:
1. the signal turns /readyz to 503 and answers carry `Connection: close`, so load balancers
   and clients move to other instances;
2. requests are still served for the grace period (`--drain-grace`), the time a load balancer
   takes to notice;
3. then the listener closes and in-flight requests and streams get up to `--drain-timeout`;
   a stream still running at that deadline ends as on its upstream timeout (an error event,
   its usage counted: the relay's timer is bounded by `bounding`);
4. Sanic's shutdown listeners flush usage and the process exits 0.

With several workers, Sanic's main process forwards the signal to each worker; it waits for
workers still starting (`defer_shutdown_while_starting`), which would otherwise die halfway
or hang the main process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from sanic import Sanic

from gateway.errors import Unavailable

log = logging.getLogger("modelgate")

SHUTDOWN_MARGIN_S = 2.0
"""Past the drain timeout, for cut streams to send their error event and settle their usage
before Sanic aborts what is left."""

STARTING_POLL_S = 0.02
"""How often a drain begun during Sanic's startup hooks looks whether the server runs."""

STARTING_WAIT_S = 120.0
"""The longest the main process holds a shutdown back for workers still starting."""


class Drain:
    """One serving process's drain: its state, and the timers of the streams it bounds."""

    def __init__(self, grace_s: float, timeout_s: float) -> None:
        self.grace_s, self.timeout_s = grace_s, timeout_s
        self.draining = False
        """Set by the signal: /readyz answers 503 from then on."""
        self.deadline: float | None = None
        """Event-loop time in-flight work must end by; set when the listener closes."""
        self._timers: set[asyncio.Timeout] = set()
        self._task: asyncio.Task[None] | None = None

    def begin(self, app: Sanic[Any, Any]) -> None:
        """The signal handler: drain once; a second SIGINT (Ctrl-C) skips the grace."""
        if self.draining:
            return
        self.draining = True
        app.config.KEEP_ALIVE = False  # heads read from now on get `Connection: close`
        log.info(
            "draining: not ready; serving %g s more, then up to %g s for in-flight requests",
            self.grace_s,
            self.timeout_s,
        )
        self._task = asyncio.get_running_loop().create_task(self._run(app))

    def hurry(self, app: Sanic[Any, Any]) -> None:
        """A second interrupt: skip what is left of the grace period."""
        if self._task is not None and self.deadline is None:
            self._task.cancel()
            self._stop(app)

    async def _run(self, app: Sanic[Any, Any]) -> None:
        await asyncio.sleep(self.grace_s)
        self._stop(app)

    def _stop(self, app: Sanic[Any, Any]) -> None:
        if self.deadline is not None:
            return
        loop = asyncio.get_running_loop()
        if not app.state.is_running:
            # Still in Sanic's startup hooks: their `run_until_complete` would swallow the
            # `loop.stop()`; Sanic sets `is_running` just before `run_forever`.
            loop.call_later(STARTING_POLL_S, self._stop, app)
            return
        self.deadline = loop.time() + self.timeout_s
        for timer in self._timers:
            self._bound(timer)
        log.info("draining: no new connections; waiting for in-flight requests")
        app.stop(terminate=False)  # Sanic closes the listener and idle connections

    def cut(self, model: str) -> Unavailable | None:
        """The error a stream ending now reports when the drain deadline cut it, else None."""
        if self.deadline is None or asyncio.get_running_loop().time() < self.deadline:
            return None
        return Unavailable(
            f"The gateway is restarting: the stream for '{model}' was cut at its drain "
            "timeout; the answer is incomplete. Retry."
        )

    @asynccontextmanager
    async def bounding(self, timer: asyncio.Timeout) -> AsyncIterator[None]:
        """Hold `timer` (a stream's total timeout) to the drain deadline, if one comes."""
        self._timers.add(timer)
        try:
            if self.deadline is not None:
                self._bound(timer)
            yield
        finally:
            self._timers.discard(timer)

    def _bound(self, timer: asyncio.Timeout) -> None:
        assert self.deadline is not None
        when = timer.when()
        if not timer.expired() and (when is None or when > self.deadline):
            timer.reschedule(self.deadline)


def install_signal_handlers(app: Sanic[Any, Any], drain: Drain) -> None:
    """Replace Sanic's stop-at-once handlers of this serving process by the drain's.

    SIGTERM (Kubernetes, docker stop) and SIGINT (what Sanic's main process sends its workers,
    and Ctrl-C) begin the drain; another SIGINT skips the rest of the grace period.

    They are Python-level handlers that hand the signal to the loop, not the loop's own:
    uvloop listens for signals only while it runs, and Sanic runs it in several steps
    (startup hooks, then `run_forever`). A signal between two steps reached the loop's
    handler never, and one during the startup hooks reached Sanic's `app.stop`, whose
    `loop.stop()` the hooks' `run_until_complete` swallowed: either way the process served
    on and never exited. A Python handler runs whether the loop runs or not, and the drain
    waits for the server to run before it stops it."""
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        if drain.draining:
            drain.hurry(app)
        else:
            drain.begin(app)

    def handler(signum: int, frame: FrameType | None) -> None:
        if loop.is_closed():  # a signal during the last steps of shutdown: nothing to do
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            if signum == signal.SIGTERM:
                loop.call_soon_threadsafe(drain.begin, app)
            else:
                loop.call_soon_threadsafe(interrupt)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)  # Sanic's `app.stop`
        signal.signal(signum, handler)


def all_workers_ready(app: Sanic[Any, Any], expected: int) -> bool:
    """With Sanic's worker processes: every one of the `expected` has started (its policy
    loaded, acknowledged to the main process) and none is being stopped. A single process
    (no multiplexer) is ready by itself."""
    multiplexer = getattr(app, "multiplexer", None)
    if multiplexer is None:
        return True
    return _started(multiplexer.workers, expected)


def _started(worker_state: Mapping[str, Mapping[str, Any]], expected: int) -> bool:
    servers = [s for s in worker_state.values() if s.get("server")]
    return len(servers) >= expected and all(
        s.get("state") == "ACKED" and s.get("serving") for s in servers
    )


def defer_shutdown_while_starting(manager: Any, expected: int) -> None:
    """In Sanic's main process: a SIGTERM or SIGINT that comes while a worker is starting is
    forwarded once every worker serves (or one has died), not at once.

    A worker interrupted halfway through its start dies in its imports, or never installs
    its handlers; the main process then waits out its timeouts, or forever. Once they serve,
    the workers drain as usual. A repeated SIGTERM is ignored (Kubernetes may send one after
    a preStop hook); a second SIGINT kills, as in Sanic."""
    forward: Callable[[int, FrameType | None], None] = manager.shutdown_signal
    state: Mapping[str, Mapping[str, Any]] = manager.worker_state
    pending = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if pending.is_set():
            if signum == signal.SIGINT:
                forward(signum, frame)  # Sanic's second-signal kill
            return
        pending.set()
        threading.Thread(target=wait_then_forward, args=(signum,), daemon=True).start()

    def wait_then_forward(signum: int) -> None:
        give_up = time.monotonic() + STARTING_WAIT_S
        while time.monotonic() < give_up and not _started_or_failed(manager, state, expected):
            time.sleep(0.05)
        forward(signum, None)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _started_or_failed(manager: Any, state: Mapping[str, Mapping[str, Any]], expected: int) -> bool:
    try:
        if _started(dict(state), expected):
            return True
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return True  # the state's manager process is gone: nothing to wait for
    return any(not process.is_alive() for process in manager.processes)
