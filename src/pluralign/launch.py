"""The console entry point. It takes over Ctrl-C before the command line's libraries load
(about half a second), so an early Ctrl-C ends the process with one line and exit 130
instead of a traceback from the middle of an import."""

from __future__ import annotations

import os
import signal
from types import FrameType


def _early_interrupt(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when the parent ignores it
        signal.signal(signal.SIGINT, _early_interrupt)
    from pluralign.cli import main as cli_main

    cli_main()
