"""A real PostgreSQL server for tests: Debian's ``postgresql`` package (scripts/setup.sh installs
it), a fresh cluster in a temporary folder on a free port of 127.0.0.1 with a password, started
and stopped by the test session. As root (CI), the server runs as the ``postgres`` account,
which PostgreSQL requires."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from support import free_port

USER = "pluralign"
PASSWORD = "pg-SECRET-7f3a"


def binaries() -> Path | None:
    """The folder of Debian's PostgreSQL programs (the newest version installed), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


class PostgresServer:
    def __init__(self) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: run scripts/setup.sh (apt-get install postgresql)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pluralign-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: dict[str, int] = {}
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            account = pwd.getpwnam("postgres")
            for path in (self.root, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "--auth", "scram-sha-256",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self.proc: subprocess.Popen | None = None
        self.start()

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bindir / program), *args], check=True, capture_output=True, timeout=120, **self._as)

    def start(self) -> None:
        log = open(self.root / "log.txt", "ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=log, **self._as,  # type: ignore[call-overload]
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.root / 'log.txt').read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("postgres did not start within 60 s")

    def stop(self, fast: bool = False) -> None:
        """Stop the server; ``fast``: at once, as a crash would (SIGQUIT: no checkpoint)."""
        if self.proc is None:
            return
        self.proc.send_signal(3 if fast else 2)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
