"""Exit quietly when whoever reads our output goes away (``recordings list | head -1``).

``head`` closes the pipe after its first line; the next write fails with ``BrokenPipeError``
(Python ignores SIGPIPE), which would end in a traceback and an "Exception ignored" line at
exit. Unix tools end silently instead; so do the repository's commands, with the status a shell
shows for a tool that SIGPIPE ended (141). It lives in the CLI's package because the CLI may
import nothing of the rest of the repository; the scripts use it from here.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Callable

#: What a shell reports for a process ended by SIGPIPE.
EXIT_READER_GONE = 128 + signal.SIGPIPE


def run_until_reader_gone(main: Callable[[], int]) -> int:
    """``main()``'s exit code, or :data:`EXIT_READER_GONE` once stdout's reader has gone.

    A ``BrokenPipeError`` from anything else (a socket) is not swallowed.
    """
    try:
        try:
            return main()
        finally:
            sys.stdout.flush()  # the last buffered lines fail here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # Python flushes stdout once more at exit: give it somewhere to go.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_READER_GONE


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe with no reader left (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
