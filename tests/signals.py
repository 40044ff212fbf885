"""What a test's child process needs to be stopped the way a user stops it."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """`preexec_fn` of a CLI child a test stops with ^C (SIGINT): the child takes SIGINT as
    KeyboardInterrupt even when the suite runs from a shell's background job, whose children
    inherit SIGINT ignored (Python then leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
