#!/usr/bin/env python3
"""Find (or start) the PostgreSQL and Redis that a test pass needs, run the pass, clean up.

    python scripts/test_services.py --pass sqlite   [--redis] [--no-tests-ok] -- pytest ...
    python scripts/test_services.py --pass postgres [--redis] [--no-tests-ok] -- pytest ...

``make test`` runs every pytest pass through this wrapper. It sets, for the command it runs:

- ``NETHOSPITAL_TEST_PASS`` = ``sqlite`` or ``postgres``. ``nethospital.testing.pytest_services``
  reads it: ``postgres``-marked tests are skipped in the SQLite pass and FAIL in the PostgreSQL pass
  when the database is not PostgreSQL.
- ``DATABASE_URL``: removed in the SQLite pass; in the PostgreSQL pass, one of (first that works)
    1. ``TEST_DATABASE_URL`` as given (used as is; pytest-django makes ``test_<name>`` from it);
    2. the server on 127.0.0.1:5432 as ``postgres`` without a password, under a fresh database name
       made for this run (so concurrent runs on one server never share test databases), dropped at exit;
    3. a throwaway cluster from the installed binaries (``pg_config --bindir``,
       /usr/lib/postgresql/*/bin), trust auth, a free port on 127.0.0.1, as the ``postgres`` user
       when run as root; stopped and deleted at exit;
  otherwise the wrapper exits non-zero with a message saying what was tried.
  ``NETHOSPITAL_TEST_THROWAWAY_SERVICES=1`` skips the servers on the default ports (PostgreSQL and
  Redis) and always starts throwaway ones.
- ``TEST_REDIS_URL`` (with ``--redis``): ``TEST_REDIS_URL`` or ``REDIS_URL`` as given, else
  127.0.0.1:6379 if it answers PING, else a throwaway ``redis-server --port <free> --save ''
  --appendonly no``; otherwise exit non-zero. ``REDIS_URL`` itself is removed from the test
  environment: with it the whole suite's cache would be Redis, and the tests' ``cache.clear()``
  would FLUSHDB a server that may hold someone's data. Tests that need Redis ask for it with the
  ``redis`` marker and read ``TEST_REDIS_URL``.

Only the standard library is needed, except psycopg to create and drop the per-run database
(already a dependency of the project).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

EXIT_NO_TESTS_COLLECTED = 5  # pytest's exit code when nothing was selected
# Skip the servers on the default ports and always start throwaway ones (to test this script, or to
# keep a developer's own servers out of a run).
THROWAWAY_ONLY = os.environ.get("NETHOSPITAL_TEST_THROWAWAY_SERVICES", "").lower() in {"1", "true", "yes", "on"}


class ServiceError(RuntimeError):
    """A service the pass needs could not be found or started."""


def log(message: str) -> None:
    print(f"[test_services] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise ServiceError(f"{what} did not become ready within {timeout:.0f}s")


# --- PostgreSQL ---------------------------------------------------------------------------------


def pg_can_login(url: str) -> str:
    """Empty string when ``url`` accepts a login, else the reason it does not."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a project dependency
        return "psycopg is not installed"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return ""
    except Exception as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.contextmanager
def run_database(server_url: str) -> Iterator[str]:
    """A database of its own for this run on a shared server; dropped at exit."""
    import psycopg

    name = f"nethospital_run_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with contextlib.suppress(Exception), psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            # pytest-django drops test_<name>[_gwN] itself; drop leftovers of an interrupted run too.
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                (name, f"test_{name}%"),
            ).fetchall()
            for (datname,) in rows:
                conn.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')


def postgres_bindirs() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(Exception):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)  # noqa: S603
            candidates.append(Path(out.stdout.strip()))
    # Newest version first.
    candidates += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return [d for d in dict.fromkeys(candidates) if (d / "initdb").exists() and (d / "pg_ctl").exists()]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    bindirs = postgres_bindirs()
    if not bindirs:
        raise ServiceError("no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config or /usr/lib/postgresql")
    bindir = bindirs[0]
    prefix: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="nethospital-pg-"))
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as the postgres system user.
        runuser = shutil.which("runuser")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pw = None
        if runuser is None or pw is None:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ServiceError("running as root, but there is no 'postgres' user or no runuser to start a cluster")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    datadir, logfile = workdir / "data", workdir / "server.log"
    port = free_port()
    log(f"starting a throwaway PostgreSQL from {bindir} on 127.0.0.1:{port} in {workdir}")
    try:
        subprocess.run(  # noqa: S603 - our own binaries and arguments
            [*prefix, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--no-sync", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, cwd=workdir,
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(  # noqa: S603
            [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-o", options, "-w", "-t", "60",
             "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=90, cwd=workdir,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", b"") or b""
        tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"could not start a throwaway PostgreSQL: {error}\n{detail.decode(errors='replace')}{tail}"
        ) from None
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        log(f"stopping the throwaway PostgreSQL on port {port}")
        with contextlib.suppress(Exception):
            subprocess.run(  # noqa: S603
                [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, cwd=workdir,
            )  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_service(stack: contextlib.ExitStack) -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL", "")
    if given:
        problem = pg_can_login(given)
        if problem:
            raise ServiceError(f"TEST_DATABASE_URL does not accept a login: {problem}")
        log("PostgreSQL: TEST_DATABASE_URL as given")
        yield given
        return
    tried = []
    local = "postgres://postgres@127.0.0.1:5432/postgres"
    if THROWAWAY_ONLY:
        tried.append("127.0.0.1:5432 not tried (NETHOSPITAL_TEST_THROWAWAY_SERVICES)")
    elif port_open("127.0.0.1", 5432):
        problem = pg_can_login(local)
        if not problem:
            log("PostgreSQL: the server on 127.0.0.1:5432, with a database of its own for this run")
            yield stack.enter_context(run_database(local))
            return
        tried.append(f"127.0.0.1:5432 is open but refused {local}: {problem}")
    else:
        tried.append("nothing listens on 127.0.0.1:5432")
    try:
        url = stack.enter_context(throwaway_postgres())
    except ServiceError as error:
        tried.append(str(error))
        raise ServiceError(
            "no PostgreSQL for the PostgreSQL pass. Tried:\n  - TEST_DATABASE_URL: not set\n  - "
            + "\n  - ".join(tried)
            + "\nSet TEST_DATABASE_URL=postgres://user:password@host:port/dbname, or install the server"
            " (apt-get install postgresql)."
        ) from None
    yield url


# --- Redis --------------------------------------------------------------------------------------


def redis_pings(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_url_pings(url: str) -> bool:
    parts = urlsplit(url)
    if parts.password or parts.scheme == "rediss":
        return True  # needs AUTH or TLS: leave the check to the client the tests use
    return redis_pings(parts.hostname or "127.0.0.1", parts.port or 6379)


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server is not installed")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="nethospital-redis-")
    log(f"starting a throwaway redis-server on 127.0.0.1:{port}")
    process = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: process.poll() is None and redis_pings("127.0.0.1", port), 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        log(f"stopping the throwaway redis-server on port {port}")
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def redis_service(stack: contextlib.ExitStack) -> Iterator[str]:
    for name in ("TEST_REDIS_URL", "REDIS_URL"):
        given = os.environ.get(name, "")
        if given:
            if not redis_url_pings(given):
                raise ServiceError(f"{name}={given} does not answer PING")
            log(f"Redis: {name} as given")
            yield given
            return
    if not THROWAWAY_ONLY and redis_pings("127.0.0.1", 6379):
        log("Redis: the server on 127.0.0.1:6379")
        yield "redis://127.0.0.1:6379/0"
        return
    try:
        url = stack.enter_context(throwaway_redis())
    except ServiceError as error:
        raise ServiceError(
            "no Redis for the tests marked 'redis'. Tried: TEST_REDIS_URL and REDIS_URL (not set), "
            f"127.0.0.1:6379 (no PONG), a throwaway redis-server ({error}).\n"
            "Set TEST_REDIS_URL=redis://host:port/db, or install it (apt-get install redis-server)."
        ) from None
    yield url


# --- Running the pass ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pass", dest="which", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--redis", action="store_true", help="provide TEST_REDIS_URL")
    parser.add_argument("--no-tests-ok", action="store_true", help="treat 'no tests collected' (exit 5) as success")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    # SIGTERM (a CI runner cancelling the job) should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    env = dict(os.environ)
    env["NETHOSPITAL_TEST_PASS"] = args.which
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    with contextlib.ExitStack() as stack:
        try:
            if args.which == "postgres":
                env["DATABASE_URL"] = stack.enter_context(postgres_service(stack))
            if args.redis:
                env["TEST_REDIS_URL"] = stack.enter_context(redis_service(stack))
        except ServiceError as error:
            log(f"ERROR: {error}")
            return 2
        shown = {k: v for k, v in env.items() if k in {"NETHOSPITAL_TEST_PASS", "DATABASE_URL", "TEST_REDIS_URL"}}
        log(" ".join(f"{k}={v}" for k, v in sorted(shown.items())) + " " + " ".join(command))
        try:
            returncode = subprocess.call(command, env=env)  # noqa: S603 - the command make test gives
        except KeyboardInterrupt:
            returncode = 130
    if returncode == EXIT_NO_TESTS_COLLECTED and args.no_tests_ok:
        log("no tests selected for this pass")
        return 0
    return returncode


if __name__ == "__main__":
    sys.exit(main())
