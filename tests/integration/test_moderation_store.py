"""Moderation's database side on SQLite and PostgreSQL: the message-event intake (claim and
enqueue), the stored channel switches, and `/moderation` run as the slash command runs it."""

from __future__ import annotations

from sqlalchemy import select

from bot.builtin_tools import default_registry
from bot.config import Settings
from bot.conversation.engagement import classify
from bot.moderation import store
from bot.moderation.intake import enqueue_moderation
from bot.moderation.job import MODERATE
from bot.moderation.models import ModerationDecision
from bot.moderation.verdict import Verdict
from bot.queue.models import BACKGROUND, Job
from bot.tools.registry import ToolContext
from bot.tools.runner import run_slash_command

REGISTRY = default_registry()
SETTINGS = Settings(moderation_channels=("CWATCH",), moderation_report_channel="CREP")
BOT = {"bot_user_id": "UBOT", "bot_id": "BBOT", "allow_bots": False}
PNG = {"id": "F1", "name": "a.png", "mimetype": "image/png", "url_private_download": "https://files/a"}


def image_event(channel: str, *files: dict, ts: str = "5.0") -> dict:
    return {
        "type": "message",
        "subtype": "file_share",
        "channel": channel,
        "user": "U1",
        "ts": ts,
        "text": "secret",
        "files": list(files),
    }


def intake(sessions, event: dict) -> list[int]:
    with sessions.begin() as session:
        return enqueue_moderation(session, SETTINGS, team_id="T1", inbound=classify(event, **BOT))


def moderate_jobs(sessions) -> list[Job]:
    with sessions() as session:
        return list(session.execute(select(Job).where(Job.kind == MODERATE.kind).order_by(Job.id)).scalars())


def test_each_image_of_a_watched_channel_is_enqueued_once_in_the_background(sessions):
    other = {**PNG, "id": "F2"}
    assert len(intake(sessions, image_event("CWATCH", PNG, other))) == 2
    assert intake(sessions, image_event("CWATCH", PNG, ts="6.0")) == []  # the same file again
    assert intake(sessions, image_event("COTHER", {**PNG, "id": "F3"})) == []  # not watched
    jobs = moderate_jobs(sessions)
    assert [(job.lane, job.user_id, job.payload["file"]["id"]) for job in jobs] == [
        (BACKGROUND, "U1", "F1"),
        (BACKGROUND, "U1", "F2"),
    ]
    assert "secret" not in str(jobs[0].payload)  # no message text in the job


def test_stored_switches_override_the_environment(sessions):
    with sessions.begin() as session:
        store.set_channel_switch(session, "T1", "CWATCH", enabled=False, user_id="UADMIN")
        store.set_channel_switch(session, "T1", "CNEW", enabled=True, user_id="UADMIN")
    assert intake(sessions, image_event("CWATCH", PNG)) == []
    assert len(intake(sessions, image_event("CNEW", {**PNG, "id": "F9"}))) == 1
    with sessions.begin() as session:
        store.set_channel_switch(session, "T1", "CWATCH", enabled=True, user_id="UOTHER")
    with sessions() as session:
        assert store.channel_switch(session, "T1", "CWATCH") is True
        assert store.channel_switch(session, "T2", "CWATCH") is None  # switches are per workspace


def ctx(sessions, *, channel="CWATCH", user="UADMIN", admin=True, typed=False) -> ToolContext:
    return ToolContext(
        team_id="T1",
        channel_id=channel,
        user_id=user,
        user_is_admin=admin,
        db=sessions,
        settings=SETTINGS,
        typed_by_person=typed,
    )


def decide(sessions, file_id: str, verdict: str, *, clicked: str | None = None) -> int:
    subject = store.Subject("T1", "CWATCH", "5.0", "UPOSTER", file_id, f"{file_id}.png", None)
    with sessions.begin() as session:
        decision = store.save_decision(
            session,
            subject,
            Verdict(verdict, (), 0.5, "r"),
            model="m",
            prompt_tokens=1,
            completion_tokens=1,
            action="reported",
        )
        if clicked:
            store.record_click(session, decision.id, action=clicked, user_id="UMOD")
        return decision.id


def test_the_moderation_command_is_for_admins_and_switches_the_current_channel(sessions):
    refused = run_slash_command(REGISTRY, "/moderation", "off", ctx(sessions, user="U1", admin=False))
    assert refused.result.content == "Only workspace admins can use /moderation."
    off = run_slash_command(REGISTRY, "/moderation", "off", ctx(sessions))
    assert off.result.ok and "now *off*" in off.result.content
    with sessions() as session:
        assert store.channel_switch(session, "T1", "CWATCH") is False
    on = run_slash_command(REGISTRY, "/moderation", "on", ctx(sessions, channel="CNEW"))
    assert "now *on*" in on.result.content and "switched on with /moderation" in on.result.content
    bad = run_slash_command(REGISTRY, "/moderation", "maybe", ctx(sessions))
    assert not bad.result.ok and "Usage: /moderation [on | off" in bad.result.content
    in_dm = run_slash_command(REGISTRY, "/moderation", "on", ctx(sessions, channel="D123"))
    assert not in_dm.result.ok and "in the channel" in in_dm.result.content


def test_the_status_counts_recent_decisions_and_overrides(sessions):
    first = decide(sessions, "F1", "allow")
    decide(sessions, "F2", "flag", clicked="dismiss")
    last = decide(sessions, "F3", "remove", clicked="remove")
    status = run_slash_command(REGISTRY, "/moderation", "", ctx(sessions)).result.content
    assert "is *on* (listed in MODERATION_CHANNELS)" in status and "Reports go to <#CREP>" in status
    assert "3 images checked (allow 1, flag 1, remove 1); 2 overridden" in status
    assert status.index(f"#{last} ") < status.index(f"#{first} ")  # newest first
    assert "remove by <@UMOD>" in status
    with sessions() as session:
        [row] = session.execute(select(ModerationDecision).where(ModerationDecision.file_id == "F2")).scalars()
    assert (row.override_action, row.overridden_by) == ("dismiss", "UMOD") and row.overridden_at is not None


def test_the_status_the_model_asks_for_lists_only_this_channels_decisions(sessions):
    """Asked through the model the answer is posted in the thread: decisions from other (maybe
    private) channels stay out. Typed, the answer goes to the admin alone (issue 22)."""
    from bot.tools.audience import has_private_results
    from bot.tools.runner import run_tool

    mine = decide(sessions, "F1", "flag")
    with sessions.begin() as session:
        elsewhere = store.save_decision(
            session,
            store.Subject("T1", "CPRIVATE", "6.0", "UPOSTER", "F9", "F9.png", None),
            Verdict("remove", (), 0.9, "r"),
            model="m",
            prompt_tokens=1,
            completion_tokens=1,
            action="reported",
        ).id
    asked = run_tool(REGISTRY, "moderation", '{"action": "status"}', ctx(sessions)).content
    assert f"#{mine} " in asked and f"#{elsewhere} " not in asked and "CPRIVATE" not in asked
    typed = run_slash_command(REGISTRY, "/moderation", "", ctx(sessions, typed=True)).result.content
    assert f"#{elsewhere} " in typed
    assert has_private_results(REGISTRY.get("moderation"))
