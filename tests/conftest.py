"""Databases for tests: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests run when TEST_DATABASE_URL points at a server (CI sets it); otherwise they
skip and say why. With BOT_REQUIRE_POSTGRES=1 (CI), any such skip fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.config import normalize_database_url

# The strict inference check (every test), pytester for the test of that check, and the
# scheduling of tests that share an e2e stack onto one pytest-xdist worker.
pytest_plugins = ["tests.support.strict_inference", "pytester", "tests.support.xdist_groups"]

# Bytecode caches, even where the environment turns them off (PYTHONDONTWRITEBYTECODE=1): without
# them every xdist worker rewrites the asserts of every test module again (~7 s of CPU each) and
# every bot process the tests start compiles bot/ again. The caches live in ignored __pycache__/.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the workers and bot processes inherit it

POSTGRES_SKIP_REASON = (
    "needs PostgreSQL: set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (.ci/run does)"
)
TEMPLATE_DB = "bot_test_template"


def _admin_url() -> str | None:
    raw = os.environ.get("TEST_DATABASE_URL")
    return normalize_database_url(raw) if raw else None


def _postgres_reachable(url: str) -> bool:
    import psycopg

    from bot.db.listen import psycopg_conninfo

    try:
        with psycopg.connect(psycopg_conninfo(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = _admin_url()
    if not url or not _postgres_reachable(url):
        pytest.skip(POSTGRES_SKIP_REASON)
    return url


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin_execute(admin_url: str, *statements: str) -> None:
    import psycopg

    from bot.db.listen import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> str:
    """A migrated template database; each test copies it (CREATE DATABASE … TEMPLATE)."""
    from bot.db.migrate import upgrade

    name = f"{TEMPLATE_DB}_{os.getpid()}"
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    upgrade(_with_database(postgres_admin_url, name))
    yield name
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _TestDatabases:
    """Each test's database, a copy of the template. The next copy is made, and used ones are
    dropped, in a thread of this worker's own while tests run: a CREATE or DROP DATABASE takes
    0.2 s on a quiet machine and seconds on a busy one, and a test need wait for neither."""

    def __init__(self, admin_url: str, template: str):
        self.admin_url, self.template = admin_url, template
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._drops: list[Future] = []
        self._next = self._thread.submit(self._create)

    def _create(self) -> str:
        name = f"bot_test_{uuid.uuid4().hex[:10]}"
        _admin_execute(self.admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def take(self) -> str:
        ready, self._next = self._next, self._thread.submit(self._create)
        return ready.result()

    def drop(self, name: str) -> None:
        self._drops.append(
            self._thread.submit(_admin_execute, self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )

    def close(self) -> None:
        """Drop the spare copy too, and raise any drop that failed."""
        if self._next.exception() is None:
            self.drop(self._next.result())
        self._thread.shutdown(wait=True)
        for drop in self._drops:
            drop.result()


@pytest.fixture(scope="session")
def _test_databases(postgres_admin_url: str, postgres_template: str):
    databases = _TestDatabases(postgres_admin_url, postgres_template)
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(postgres_admin_url: str, _test_databases: _TestDatabases) -> str:
    name = _test_databases.take()
    yield _with_database(postgres_admin_url, name)
    _test_databases.drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    from bot.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "bot.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(database_url):
    from bot.db.engine import make_engine

    engine = make_engine(database_url, pool_size=20)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    from bot.db.engine import make_session_factory

    return make_session_factory(engine)


def pytest_xdist_auto_num_workers(config) -> int | None:
    """`-n auto`: three workers per core, not one. Most tests wait (on a real process, a fake's
    answer, a deadline): with one worker per core the suite used 82 % of one core of two. On two
    cores, a clean-clone `.ci/run` took 293 s with four workers and 264 s with six (pytest 259 s
    and 230 s), for the same CPU time (406 and 404 s).
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    return 3 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session) -> None:
    """Under pytest-xdist, rewrite the asserts of the test modules once, here, before the workers
    start: on a fresh clone every worker found no cached rewrite and rewrote them all itself, each
    spending ~3 s of CPU (four times over, on two cores, before the first test ran). The workers
    then read the cached rewrites. A best effort on pytest's internals: if they change, the
    workers rewrite as before."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None) or sys.dont_write_bytecode:
        return
    try:
        from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc, _rewrite_test, _write_pyc, assertstate_key
        from _pytest.pathlib import fnmatch_ex

        state = config.stash.get(assertstate_key, None)
        if state is None:  # --assert=plain
            return
        patterns = [*config.getini("python_files"), "conftest.py"]
        for path in sorted((config.rootpath / "tests").rglob("*.py")):
            if not any(fnmatch_ex(pattern, path) for pattern in patterns):
                continue
            pyc = path.parent / "__pycache__" / f"{path.name[:-3]}{PYC_TAIL}"
            if _read_pyc(path, pyc, state.trace) is not None:
                continue
            pyc.parent.mkdir(exist_ok=True)
            source_hash, code = _rewrite_test(path, config)
            _write_pyc(state, code, source_hash, pyc)
    except Exception:  # noqa: S110 - a cache warm-up: a worker rewrites what is missing
        pass


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()) or "postgres_admin_url" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.postgres)


_postgres_skips: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and POSTGRES_SKIP_REASON in str(report.longrepr):
        _postgres_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    # Under pytest-xdist the controller receives every worker's reports, so it sees every skip.
    if os.environ.get("BOT_REQUIRE_POSTGRES") == "1" and _postgres_skips:
        session.config._postgres_skips_failed = True
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if getattr(config, "_postgres_skips_failed", False):
        terminalreporter.write_line(
            f"FAILED: {len(_postgres_skips)} PostgreSQL tests were skipped but BOT_REQUIRE_POSTGRES=1 "
            f"(first: {_postgres_skips[0]})",
            red=True,
        )


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
