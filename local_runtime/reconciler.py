"""The reconciler on this machine: the timer function's run, every few seconds, against Azurite.

In Azure the Functions host runs ``reconcile_archive`` on ``RECONCILE_SCHEDULE``; the host
cannot run here, so this loop plays its part: it calls the run it is given (the command line's,
``python -m scripts.reconcile --every SECONDS``, with its ``--dry-run``, ``--json`` and
``--sweep``) on the wall clock. SIGTERM or SIGINT end it between runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

LOGGER = logging.getLogger("reconciler")

#: One run; its argument is the run's number (0 for the first).
RunOnce = Callable[[int], object]


def serve(run_once: RunOnce, every_seconds: float) -> int:
    """Call ``run_once`` every ``every_seconds`` until SIGTERM or SIGINT; 0 when stopped.

    The signal handlers in place before are put back when the loop ends.
    """
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    LOGGER.info("reconciler running every %.1f s", every_seconds)
    try:
        number = 0
        while not stop.is_set():
            try:
                run_once(number)
            except Exception:  # the loop is the host boundary: a failed run is logged, not fatal
                LOGGER.exception("reconciler run failed")
            number += 1
            stop.wait(every_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    LOGGER.info("reconciler stopped")
    return 0
