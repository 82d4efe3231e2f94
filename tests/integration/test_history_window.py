"""Loading what a reply can send, on both databases: the newest rows the budget holds (from the
stored estimates, in one query), the first message, a count of what was not loaded, and image
bytes only for the newest images within the per-request cap."""

from __future__ import annotations

from sqlalchemy import event, select, text

from bot.conversation.budget import estimate_entry_tokens, fit_to_budget
from bot.conversation.window import ATTRIBUTION_ALLOWANCE, load_window, newest_rows
from bot.history import store as history
from bot.history.estimates import attachment_parts, bare_entry, stored_tokens
from bot.history.models import MessageImage, ThreadMessage
from bot.history.thread import ThreadEntry

WORDS = "the deploy failed because the worker ran out of memory after the release phase "


def add(session, ts, text, *, user="U1", files=None, thread="1.0", channel="C1"):
    history.engage_thread(session, "T1", channel, thread, mid_thread=False)
    history.upsert_message(
        session, team_id="T1", channel_id=channel, thread_ts=thread, ts=ts, user_id=user, text=text, files=files
    )


def row(session, ts, channel="C1"):
    return session.execute(
        select(ThreadMessage).where(ThreadMessage.channel_id == channel, ThreadMessage.ts == ts, ThreadMessage.seq == 0)
    ).scalar_one()


def test_estimates_are_stored_when_written_edited_deleted_and_answered(sessions):
    with sessions.begin() as session:
        add(session, "1.0", "hello " + WORDS)
        add(session, "2.0", "with a file", files=[{"id": "F1", "name": "notes.zip", "mimetype": "application/zip"}])
    with sessions.begin() as session:
        first, second = row(session, "1.0"), row(session, "2.0")
        assert first.tokens == stored_tokens(bare_entry(first, attachment_parts(None, ()))) > 10
        assert second.tokens > stored_tokens(bare_entry(second, attachment_parts(None, ())))  # the file's note
        history.edit_message(session, team_id="T1", channel_id="C1", ts="1.0", text="hi", files=None)
    with sessions.begin() as session:
        assert row(session, "1.0").tokens == stored_tokens(bare_entry(row(session, "1.0"), attachment_parts(None, ())))
        history.delete_message(session, team_id="T1", channel_id="C1", ts="2.0")
        history.record_turn(
            session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1.0",
            answers_ts="1.0",
            entries=[{"role": "assistant", "text": "an answer " + WORDS}],
        )
    with sessions() as session:
        assert (row(session, "2.0").tokens, row(session, "2.0").image_tokens) == (0, 0)
        answer = session.execute(select(ThreadMessage).where(ThreadMessage.seq == 1)).scalar_one()
        assert answer.tokens > 10


def test_images_count_once_prepared(sessions):
    with sessions.begin() as session:
        add(session, "1.0", "look", files=[{"id": "F1", "name": "a.png", "mimetype": "image/png"}])
        message = row(session, "1.0")
        session.add(
            MessageImage(message_id=message.id, file_id="F1", media_type="image/png", data=b"x", width=1500, height=750)
        )
        session.flush()
        history.refresh_tokens(session, [message.id])
    with sessions() as session:
        assert row(session, "1.0").image_tokens == 1500 * 750 // 750


def fill(sessions, count, *, channel="C1"):
    with sessions.begin() as session:
        for n in range(count):
            add(session, f"{100 + n}.000000", f"message {n}: " + WORDS, user=f"U{n % 3}", channel=channel)


def test_the_newest_rows_that_fit_and_the_first_one(sessions):
    fill(sessions, 60)
    with sessions() as session:
        every = newest_rows(session, "T1", "C1", "1.0", budget_tokens=10**9)
        per_row = every.rows[-1].tokens + ATTRIBUTION_ALLOWANCE
        window = newest_rows(session, "T1", "C1", "1.0", budget_tokens=per_row * 10)
    assert len(every.rows) == every.total_rows == 60 and every.omitted == 0
    # The ten newest (the tenth crossing the budget is kept) and the thread's first message.
    assert [r.ts for r in window.rows] == ["100.000000", *[f"{100 + n}.000000" for n in range(50, 60)]]
    assert window.total_rows == 60 and window.omitted == 49
    assert window.total_tokens == every.total_tokens


def test_the_window_after_a_summary_starts_after_it(sessions):
    fill(sessions, 20)
    with sessions() as session:
        window = newest_rows(session, "T1", "C1", "1.0", budget_tokens=10**9, after=("109.000000", 0))
    assert window.rows[0].ts == "110.000000" and window.total_rows == 10


def test_loaded_entries_say_what_was_not_loaded_and_fit_the_budget(sessions):
    fill(sessions, 200)
    with sessions() as session:
        entries, window = load_window(session, "T1", "C1", "1.0", budget_tokens=2000, max_images=10)
    assert entries[0].text.startswith("message 0:") and entries[1].extra == {"omitted": window.omitted}
    fitted = fit_to_budget(entries, budget_tokens=2000, fixed_tokens=100)
    assert fitted.fits and fitted.left_out >= window.omitted > 150
    assert "earlier messages of this thread left out" in fitted.entries[1].text
    # Stored estimates are what the budget counts, exactly as if recounted.
    for entry in entries[2:]:
        assert estimate_entry_tokens(entry) == estimate_entry_tokens(
            entry.__class__(**{**entry.__dict__, "tokens": None})
        )


def test_only_the_newest_images_within_the_cap_are_loaded_and_numbered(sessions, engine):
    png = b"\x89PNG\r\n\x1a\n" + b"p" * 100
    with sessions.begin() as session:
        for n in range(40):
            add(
                session,
                f"{100 + n}.0",
                f"shot {n}",
                files=[{"id": f"F{n}", "name": f"shot{n}.png", "mimetype": "image/png"}],
            )
            message = row(session, f"{100 + n}.0")
            session.add(
                MessageImage(
                    message_id=message.id, file_id=f"F{n}", media_type="image/png", data=png, width=10, height=10
                )
            )
            session.flush()
            history.refresh_tokens(session, [message.id])
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as session:
            entries, _ = load_window(session, "T1", "C1", "1.0", budget_tokens=10**6, max_images=10)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with_images = [e for e in entries if e.images]
    assert len(with_images) == 10 and all(e.images[0].data == png for e in with_images)
    assert [e.images[0].number for e in with_images] == list(range(31, 41))
    assert [e.images[0].name for e in with_images][-1] == "shot39.png"
    assert sum(e.images_left_out for e in entries) == 30
    # The image bytes were selected for the chosen ten only.
    data_queries = [s for s in statements if "message_images.data" in s]
    assert len(data_queries) == 1


def test_the_window_query_reads_the_thread_index(postgres_url):
    from bot.db.engine import make_engine, make_session_factory

    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)
    try:
        fill(sessions, 300)
        statements = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        with sessions() as session:
            newest_rows(session, "T1", "C1", "1.0", budget_tokens=2000)
        event.remove(engine, "before_cursor_execute", record)
        [(statement, parameters)] = statements  # one query
        with engine.connect() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + statement, parameters))
        assert "ix_thread_messages_thread" in plan, plan
        assert "Seq Scan on thread_messages" not in plan, plan
    finally:
        engine.dispose()


def test_the_migration_backfills_estimates_of_existing_rows(database_url):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from bot.config import normalize_database_url
    from bot.db.migrate import alembic_config, upgrade

    config = alembic_config(database_url)
    before = ScriptDirectory.from_config(config).get_revision("0006_i17_tokens").down_revision
    command.downgrade(config, before)
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.begin() as connection:
            for n, (role, body) in enumerate(
                [("user", "a question " + WORDS), ("assistant", "an answer " + WORDS * 3)]
            ):
                connection.execute(
                    text(
                        "INSERT INTO thread_messages (team_id, channel_id, thread_ts, ts, seq, role, text, edited,"
                        " deleted, created_at, updated_at) VALUES ('T1', 'C1', '1.0', :ts, 0, :role, :body, false,"
                        " false, :now, :now)"
                    ),
                    {"ts": f"{n + 1}.0", "role": role, "body": body, "now": "2026-11-30 10:00:00"},
                )
        upgrade(database_url)
        with engine.connect() as connection:
            tokens = dict(connection.execute(text("SELECT role, tokens FROM thread_messages")).all())
    finally:
        engine.dispose()
    assert tokens["user"] == stored_tokens(ThreadEntry("1.0", "user", "a question " + WORDS))
    assert tokens["assistant"] == stored_tokens(ThreadEntry("2.0", "assistant", "an answer " + WORDS * 3))
