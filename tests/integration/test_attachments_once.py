"""A file is read and stored once per message, however many replies want it (issue 22), on
PostgreSQL: two quick mentions in one thread used to both download and read the same file and
store it twice (a document's text then went twice into every later request)."""

from __future__ import annotations

import threading

import httpx
import pytest
from slack_sdk import WebClient
from sqlalchemy import create_engine, select, text

from bot.config import normalize_database_url
from bot.conversation.window import newest_rows
from bot.db.engine import make_engine, make_session_factory
from bot.db.migrate import alembic_config
from bot.documents.extract import Limits
from bot.documents.reader import DocumentReader
from bot.history import store as history
from bot.history.attachments import AttachmentResolver
from bot.history.models import MessageImage
from bot.sandbox import Sandbox
from tests.fakes.slack import FakeSlack
from tests.support.pdfs import make_pdf


@pytest.fixture
def pg_sessions(postgres_url):
    engine = make_engine(postgres_url, pool_size=20)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def resolver(sessions, slack, http) -> AttachmentResolver:
    return AttachmentResolver(
        sessions,
        api_url=slack.api_url,
        max_file_bytes=1_000_000,
        http=http,
        document_max_bytes=500_000,
        documents=DocumentReader(Sandbox(slots=2), limits=Limits()),
    )


def test_two_concurrent_replies_store_a_file_once(pg_sessions, slack):
    sessions = pg_sessions
    pdf = slack.add_file(
        "FREPORT", make_pdf([f"Quarter {n} revenue" for n in range(1, 30)]), name="r.pdf", mimetype="application/pdf"
    )
    with sessions.begin() as session:
        history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        history.upsert_message(
            session, team_id="T1", channel_id="C1", thread_ts="1.0", ts="1.0", user_id="U1", text="read", files=[pdf]
        )
    with sessions() as session:
        rows = newest_rows(session, "T1", "C1", "1.0", budget_tokens=100_000).rows
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def reply() -> None:
        with httpx.Client() as http:
            start.wait()
            try:
                resolver(sessions, slack, http)(client, "T1", rows, max_images=10, budget_tokens=100_000)
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=reply) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert [d.file_id for d in slack.downloads] == ["FREPORT"]  # read once
    with sessions() as session:
        stored = session.execute(select(MessageImage)).scalars().all()
        assert len(stored) == 1 and "Quarter 29 revenue" in stored[0].text
        assert session.execute(text("SELECT count(*) FROM attachment_reads")).scalar_one() == 0


def test_a_reply_that_claims_just_after_another_stored_the_file_does_not_read_it(pg_sessions, slack, monkeypatch):
    """The interleaving a loaded machine produces: this reply finds nothing stored, then the
    other reply stores its outcome and lets its claim go, then this reply claims a free file."""
    from bot.history import attachments

    sessions = pg_sessions
    pdf = slack.add_file("FREPORT", make_pdf(["Quarter 1 revenue"]), name="r.pdf", mimetype="application/pdf")
    with sessions.begin() as session:
        history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        history.upsert_message(
            session, team_id="T1", channel_id="C1", thread_ts="1.0", ts="1.0", user_id="U1", text="read", files=[pdf]
        )
    with sessions() as session:
        rows = newest_rows(session, "T1", "C1", "1.0", budget_tokens=100_000).rows
    with sessions.begin() as session:
        assert attachments.claim(session, rows[0].id, "FREPORT", "other")  # the other reply is reading it
    real_claim, others_turn = attachments.claim, [True]

    def claim_after_the_other_reply_stored(session, message_id, file_id, token):
        if others_turn and others_turn.pop():
            with sessions.begin() as other:
                attachments._store_once(
                    other, "other", message_id=message_id, file_id=file_id, text="Quarter 1 revenue", problem=None
                )
        return real_claim(session, message_id, file_id, token)

    monkeypatch.setattr(attachments, "claim", claim_after_the_other_reply_stored)
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    with httpx.Client() as http:
        resolver(sessions, slack, http)(client, "T1", rows, max_images=10, budget_tokens=100_000)
    assert slack.downloads == []  # the other reply read it
    with sessions() as session:
        assert session.execute(text("SELECT count(*) FROM message_images")).scalar_one() == 1
        assert session.execute(text("SELECT count(*) FROM attachment_reads")).scalar_one() == 0


def test_the_migration_keeps_one_row_per_message_and_file(postgres_admin_url, tmp_path):
    """Duplicates stored before the unique key existed are removed, the first one kept."""
    from alembic import command

    from tests.conftest import _admin_execute, _with_database

    name = "bot_dedupe_" + tmp_path.name[-8:].lower().replace("-", "_")
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    url = _with_database(postgres_admin_url, name)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0025_channel_settings")
        engine = create_engine(normalize_database_url(url))
        with engine.begin() as connection:
            message_id = connection.execute(
                text(
                    "INSERT INTO thread_messages (team_id, channel_id, thread_ts, ts, seq, role, text, edited, "
                    "deleted, created_at, updated_at) VALUES ('T1', 'C1', '1.0', '1.0', 0, 'user', 'x', false, "
                    "false, now(), now()) RETURNING id"
                )
            ).scalar_one()
            for content in ("first", "second", "third"):
                connection.execute(
                    text("INSERT INTO message_images (message_id, file_id, text) VALUES (:m, 'F1', :t)"),
                    {"m": message_id, "t": content},
                )
            connection.execute(
                text("INSERT INTO message_images (message_id, file_id, text) VALUES (:m, 'F2', 'other')"),
                {"m": message_id},
            )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT file_id, text FROM message_images ORDER BY file_id")).all()
        engine.dispose()
        assert [tuple(row) for row in rows] == [("F1", "first"), ("F2", "other")]
    finally:
        _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
