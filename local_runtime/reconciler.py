"""The reconciler on this machine: the timer function's run, every few seconds, against Azurite.

In Azure the Functions host runs ``reconcile_archive`` on ``RECONCILE_SCHEDULE``; the host
cannot run here, so this loop plays its part: the same ``recording_pipeline.reconcile.run`` with
the same settings (the local stack's), on the wall clock, its summary line logged after each
run. SIGTERM or SIGINT end it between runs. The command line is
``python -m scripts.reconcile --every SECONDS``.
"""

from __future__ import annotations

import logging
import signal
import threading

from recording_pipeline.reconcile.run import run_scheduled
from recording_pipeline.settings import Settings

LOGGER = logging.getLogger("reconciler")


def serve(settings: Settings, every_seconds: float) -> int:
    """Run every ``every_seconds`` until SIGTERM or SIGINT; 0 when stopped."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    LOGGER.info("reconciler running every %.1f s", every_seconds)
    while not stop.is_set():
        try:
            run_scheduled(settings)
        except Exception:  # the loop is the host boundary: a failed run is logged, not fatal
            LOGGER.exception("reconciler run failed")
        stop.wait(every_seconds)
    LOGGER.info("reconciler stopped")
    return 0
