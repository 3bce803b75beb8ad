"""What a new user reads first: every command's line in a list of commands is one sentence; output
that cannot be written (a full disk, a pipe closed early) ends in one line or quietly."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer
from typer.testing import CliRunner

from pluralign.cli import app


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every visible command under ``group``, by its full name (typer's own click objects)."""
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        found.append((f"{prefix}{name}", command))
        if hasattr(command, "commands"):
            found += _commands(command, f"{prefix}{name} ")
    return found


def _listed(command: Any) -> str:
    """The text a list of commands shows for ``command`` (typer: short_help, else the first
    paragraph of its help)."""
    return (command.short_help or (command.help or "").strip().split("\n\n")[0]).strip()


def test_every_command_is_listed_with_one_line():
    commands = _commands(typer.main.get_command(app))
    assert {"eval", "metrics", "serve", "profile next", "batch import"} <= {name for name, _ in commands}
    for name, command in commands:
        summary = _listed(command)
        assert summary and "\n" not in summary, f"{name}: {summary!r}"
        assert len(summary) <= 100, f"{name}: {len(summary)} characters (a sentence, not a paragraph)"


def test_the_command_list_shows_each_summary_on_its_line(cli):
    shown = cli("--help", env={"COLUMNS": "200"}).stdout
    root = typer.main.get_command(app)
    for name, command in _commands(root):
        if " " not in name:
            line = next(line for line in shown.splitlines() if f"│ {name} " in line)
            assert _listed(command) in line, name


def test_no_help_shows_a_python_type():
    """An option's type is shown as a word (<str>, <int>), never as Python's repr of an annotated
    type with a memory address (``--cache`` and ``--db`` showed ``<typing.Annotated[str, ...]>``).
    In process (typer's runner renders what the console script does): 25 commands' help."""
    runner = CliRunner(env={"COLUMNS": "250"})
    for name, _ in _commands(typer.main.get_command(app)):
        result = runner.invoke(app, [*name.split(), "--help"])
        shown = result.output
        assert result.exit_code == 0 and "Usage:" in shown, (name, shown)
        for needle in ("typing.", "Annotated", "Validator", "PydanticUndefined", " at 0x", "<class"):
            assert needle not in shown, f"pluralign {name} --help shows {needle!r}"


def _draw(stdout: Any) -> subprocess.Popen[bytes]:
    """``targets draw`` of 1,024 targets (100 KB, more than a pipe holds) in a process of its own."""
    args = ["targets", "draw", "--n-attributes", "5", "--count", "1024"]
    return subprocess.Popen([sys.executable, "-m", "pluralign", *args], stdout=stdout, stderr=subprocess.PIPE)


def test_output_to_a_full_disk_is_one_line():
    with open("/dev/full", "wb") as full:
        proc = _draw(full)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.decode() == "error: cannot write the output: No space left on device\n", err


def test_output_into_a_pipe_closed_early_ends_quietly():
    """``pluralign ... | head``: the reader has what it wanted; no traceback, no error line."""
    proc = _draw(subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100).startswith(b"{")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1 and err == b"", err
