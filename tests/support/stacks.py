"""What the two kinds of bot stack share: the real processes of tests/e2e and the single process of
tests/scenario (tests.support.in_process) start from the same settings and database, and tests
wait on them the same way."""

from __future__ import annotations

import shutil
import uuid

# The settings every stack starts with; a module's overrides come on top.
STACK_SETTINGS = {
    "WEB_CONCURRENCY": "1",  # one gunicorn worker: a second is one more process to start, and tests
    # that are about two web processes start a second `bot web` (tests/e2e/test_fault_suite.py)
    "WORKER_CONCURRENCY": "4",
    "JOB_LEASE_SECONDS": "10",
    "INFERENCE_MAX_OUTPUT_TOKENS": "4096",
    "BOT_ANSWER_MAX_TOKENS": "4096",  # one call holds the long answers these tests ask for
}


def new_channel() -> str:
    return "C" + uuid.uuid4().hex[:9].upper()


def stack_database(kind: str, request, tmp_path_factory) -> str:
    """A migrated database of its own for one stack: a copy of the SQLite template, or a
    PostgreSQL database created from the template (dropped when the stack's scope ends)."""
    if kind == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("stack-db") / "bot.sqlite3"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    admin = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    from tests.conftest import _admin_execute, _with_database

    name = f"bot_e2e_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    request.addfinalizer(lambda: _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return _with_database(admin, name)


def wait_idle(stack, timeout: float = 20.0) -> None:
    """Until no job is queued or running (every reply finished)."""
    from sqlalchemy import create_engine, text

    from bot.config import normalize_database_url
    from tests.support.processes import wait_for

    engine = create_engine(normalize_database_url(stack.database_url))
    try:

        def idle():
            with engine.connect() as connection:
                return (
                    connection.execute(
                        text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
                    ).scalar_one()
                    == 0
                )

        assert wait_for(idle, timeout=timeout), f"jobs still pending; logs:\n{stack.logs()[-3000:]}"
    finally:
        engine.dispose()
