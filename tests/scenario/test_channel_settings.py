"""Channel and workspace settings (#25) through signed Slack requests, on SQLite and PostgreSQL:
`/settings` looks and changes, only admins change, bad values are explained, an uninstall
deletes them."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from bot.channel_settings.command import NOT_ADMIN
from bot.channel_settings.command_job import SETTINGS
from bot.channel_settings.models import ChannelSetting, ChannelSettingChange
from bot.retention.tasks import FORGET_WORKSPACE
from tests.fakes.slack import next_ts
from tests.scenario.conftest import new_channel
from tests.support import slack_requests as sr

ADMIN, MEMBER = "UADMIN1", "UMEMBER1"


def people(scenario) -> None:
    scenario.slack.add_user(ADMIN, name="ada", is_admin=True)
    scenario.slack.add_user(MEMBER, name="max")


def settings_command(scenario, text: str, *, user: str = ADMIN, channel: str = "C1") -> str:
    """Type `/settings <text>`; the answer's text."""
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        "/settings", text, user_id=user, channel_id=channel, response_url=scenario.slack.response_url(name)
    )
    assert scenario.post_form(form).status_code == 200
    [post] = scenario.wait(lambda: scenario.slack.responses_to(name), f"the answer to /settings {text}")
    assert post.body["response_type"] == "ephemeral"
    return post.body["text"]


def stored(scenario, *where) -> list[tuple[str, str, str]]:
    with scenario.runtime.sessions() as session:
        rows = session.execute(select(ChannelSetting).where(*where)).scalars()
        return sorted((row.channel_id, row.name, row.value) for row in rows)


def test_a_member_can_look_but_not_change(scenario):
    people(scenario)
    channel = new_channel()
    answer = settings_command(scenario, "instructions Always answer in French.", user=MEMBER, channel=channel)
    assert answer == NOT_ADMIN
    assert stored(scenario) == []
    shown = settings_command(scenario, "", user=MEMBER, channel=channel)
    assert f"Settings in <#{channel}>" in shown and "app default" in shown
    assert [job.status for job in scenario.wait_settled(SETTINGS.kind, count=2)] == ["done", "done"]


def test_an_admin_sets_every_setting_and_settings_shows_them_with_the_last_change(scenario):
    people(scenario)
    channel = new_channel()
    model = scenario.settings.inference_model_id
    for text in (
        "instructions Answer like a pirate.",
        "tools calculate",
        "answer mentions",
        "budget 50k",
        f"model {model}",
    ):
        assert settings_command(scenario, text, channel=channel).startswith("Done:"), text
    assert stored(scenario, ChannelSetting.channel_id == channel) == [
        (channel, "answer", "mentions"),
        (channel, "budget", "50000"),
        (channel, "instructions", "Answer like a pirate."),
        (channel, "model", model),
        (channel, "tools", "calculate"),
    ]
    settings_command(scenario, "workspace tools none")
    shown = settings_command(scenario, "", user=MEMBER, channel=channel)
    assert "“Answer like a pirate.”" in shown
    assert "*tools*: `calculate` — _this channel, by <@UADMIN1> on " in shown
    assert "*answer*: `mentions`" in shown and "*budget*: `50,000 tokens a day`" in shown
    assert f"*model*: `{model}`" in shown
    assert f"Last change: <@{ADMIN}> changed *model* from `(inherited)` to `{model}` on " in shown
    workspace = settings_command(scenario, "workspace", user=MEMBER, channel=channel)
    assert "*tools*: `none` — _set here, by <@UADMIN1>" in workspace
    assert "*instructions*: `none` — _app default_" in workspace
    elsewhere = settings_command(scenario, "", user=MEMBER, channel=new_channel())
    assert "*tools*: `none` — _workspace, by <@UADMIN1>" in elsewhere  # the workspace default applies
    with scenario.runtime.sessions() as session:
        changes = session.execute(select(func.count()).select_from(ChannelSettingChange)).scalar_one()
    assert changes == 6


def test_bad_values_get_the_usage_line_and_what_is_allowed(scenario):
    people(scenario)
    channel = new_channel()
    answer = settings_command(scenario, "tools calculate,teleport", channel=channel)
    assert "Unknown tools: teleport." not in answer and "Unknown tool: teleport." in answer
    assert "Usage: /settings tools <name,name|all|none>" in answer and "`calculate`" in answer
    answer = settings_command(scenario, "model gpt-17", channel=channel)
    assert "not an attached model" in answer and f"`{scenario.settings.inference_model_id}`" in answer
    answer = settings_command(scenario, "budget lots", channel=channel)
    assert "Usage: /settings budget" in answer
    answer = settings_command(scenario, "colour blue", channel=channel)
    assert "There is no setting 'colour'." in answer and "Usage: /settings" in answer
    assert stored(scenario) == []


def test_in_a_direct_message_the_workspace_defaults_apply(scenario):
    people(scenario)
    dm = "D" + new_channel()[1:]
    answer = settings_command(scenario, "answer mentions", channel=dm)
    assert "Direct messages follow the workspace defaults" in answer
    assert "Workspace defaults" in settings_command(scenario, "", channel=dm)
    assert settings_command(scenario, "workspace instructions Be brief.", channel=dm).startswith("Done:")
    assert stored(scenario) == [("", "instructions", "Be brief.")]


def test_an_uninstall_deletes_the_settings(scenario):
    people(scenario)
    channel = new_channel()
    settings_command(scenario, "tools calculate", channel=channel)
    settings_command(scenario, "workspace budget none", channel=channel)
    assert len(stored(scenario)) == 2
    assert scenario.post_event({"type": "app_uninstalled", "event_ts": next_ts()}).status_code == 200
    [job] = scenario.wait_settled(FORGET_WORKSPACE.kind)
    assert job.status == "done"
    assert stored(scenario) == []
    with scenario.runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(ChannelSettingChange)).scalar_one() == 0
