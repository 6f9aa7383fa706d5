"""`modelgate serve` that sends itself a SIGTERM as Sanic logs its ready line: between the run
of the loop for the startup hooks and the one that serves, where the signal was once lost
(uvloop listens for signals only while it runs; the process then served on, never exiting).

    python -m tests.operations.signal_at_start serve ARGS..."""

from __future__ import annotations

import logging
import os
import signal
import sys

from gateway.cli import main


class _TerminateWhenReady(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Worker ready"):
            os.kill(os.getpid(), signal.SIGTERM)
        return True


if __name__ == "__main__":
    logging.getLogger("sanic.server").addFilter(_TerminateWhenReady())
    sys.argv[0] = "modelgate"
    main()
