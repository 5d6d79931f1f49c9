"""A temporary PostgreSQL cluster for tests (Debian's ``postgresql`` package).

``pg_cluster`` (session fixture) runs ``initdb`` in a fresh folder and ``pg_ctl start`` on
a free local port (listening on 127.0.0.1 and a socket in that folder, trust
authentication, user ``bench``); it is stopped and removed at the end of the session.
``pg_url`` (per test) is the URL of a new empty database in it. Both skip, saying why,
when the server binaries or ``psycopg`` are missing. initdb refuses to run as root: then
the cluster belongs to the ``postgres`` system user (``runuser``).

Use from a test module::

    from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgCluster", "find_pg_bin", "pg_cluster", "pg_url", "temporary_cluster"]


def find_pg_bin() -> Path | None:
    """The folder of ``initdb`` / ``pg_ctl`` / ``postgres``: ``$BENCH_PG_BIN``, else the
    newest ``/usr/lib/postgresql/<v>/bin``, else the ones on PATH; None without."""
    env = os.environ.get("BENCH_PG_BIN")
    cands = [Path(env)] if env else []
    cands += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    which = shutil.which("initdb")
    if which:
        cands.append(Path(which).parent)
    for c in cands:
        if all((c / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running temporary cluster: :attr:`url` of its ``postgres`` database."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: str | None):
        self.bindir, self.root, self.port, self.as_user = bindir, root, port, as_user
        self.data = root / "data"
        self.url = f"postgresql://bench@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "bench",
                  "--no-sync", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c max_connections=200 -c fsync=on", "start")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      check=False)

    def new_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def log(self) -> str:
        try:
            return (self.root / "log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextlib.contextmanager
def temporary_cluster() -> Iterator[PgCluster]:
    """Start a temporary cluster (see the module docstring); stop and remove it after.
    ``pytest.skip`` when it cannot run here."""
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql, or "
                    "set BENCH_PG_BIN)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    as_user = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: initdb refuses root")
        as_user = "postgres"
        try:
            import pwd

            pw = pwd.getpwnam(as_user)
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user for initdb")
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if as_user:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(bindir, root, _free_port(), as_user)
    try:
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"could not start PostgreSQL: {(exc.stderr or exc.stdout)[-500:]}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    with temporary_cluster() as c:
        yield c


@pytest.fixture
def pg_url(pg_cluster: PgCluster, monkeypatch) -> str:
    """A new empty database of the session's cluster, also set as ``$BENCH_STUDY_DB``."""
    url = pg_cluster.new_database()
    monkeypatch.setenv("BENCH_STUDY_DB", url)
    return url


def main() -> None:
    """``python -m tests.pg``: start a temporary cluster, print a new database's URL, keep
    it running until stdin closes or Ctrl-C, then stop and remove it (for load tests:
    ``BENCH_STUDY_DB=<url>``)."""
    import sys

    try:
        with temporary_cluster() as c:
            print(c.new_database(), flush=True)
            try:
                sys.stdin.read()
            except KeyboardInterrupt:
                pass
    except pytest.skip.Exception as exc:
        raise SystemExit(f"no PostgreSQL here: {exc}") from None


if __name__ == "__main__":
    main()
