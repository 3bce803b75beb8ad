"""The ``pluralign`` command line. Errors print one line and exit 2, never a traceback.

One module per group of commands; each has a ``register(app)``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer
from pydantic import ValidationError
from typer.exceptions import TyperException

from pluralign.cli import batch, calibrate, catalog, choose, compare, data, evaluation, profile, respond, serve
from pluralign.cli.common import error_line, refuse_empty_paths, say
from pluralign.cli.interrupt import farewell, interrupted, interruptible, said_farewell
from pluralign.support.errors import PluralignError, one_line, validation_message

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Steerable pluralistic alignment.")
for module in (evaluation, compare, calibrate, choose, respond, data, catalog, profile, batch, serve):
    module.register(app)
refuse_empty_paths(app)


class _WarningLine(logging.Handler):
    """pluralign's warnings (a skipped corrupt line, a dropped torn record) as one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        say(f"warning: {one_line(record.getMessage())}", style="yellow", err=True)


def _configure_logging() -> None:
    logger = logging.getLogger("pluralign")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(level=logging.WARNING))
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app, turning known errors into one line."""
    _configure_logging()
    try:
        with interruptible():
            # Without standalone mode click returns (not raises) the code of a typer.Exit.
            code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except PluralignError as exc:
        if interrupted():  # a judge stopped by Ctrl-C says so through a cancelled deadline
            farewell("interrupted")
            sys.exit(130)
        error_line(one_line(exc))
        sys.exit(2)
    except ValidationError as exc:
        error_line(validation_message(exc))
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        farewell("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # `pluralign ... | head`: the reader has what it wanted
        _quiet_stdout()
        sys.exit(1)
    except OSError as exc:  # a path that cannot be read or written: name it, in one line
        where = f"use {exc.filename}" if exc.filename else "write the output"  # stdout to a full disk
        error_line(f"cannot {where}: {exc.strerror or exc}")
        sys.exit(2)
    except TyperException as exc:  # usage errors: unknown option, missing value, bad choice
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        error_line(f"{one_line(message)} (see --help)")
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    if code == 130 and interrupted() and not said_farewell():
        farewell("interrupted")  # typer turns a KeyboardInterrupt into a silent exit 130
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail a second time on the closed
    pipe (Python's own advice for SIGPIPE)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
