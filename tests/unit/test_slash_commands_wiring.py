"""What Slack is told about the commands (manifest), which listeners exist, and the answer's shape."""

import json
import subprocess
import sys

from bot.builtin_tools import default_registry
from bot.channel_settings.command_job import SETTINGS
from bot.conversation.ask_job import ASK
from bot.slack.manifest import build_manifest
from bot.slack.response_url import CUT_NOTE, MAX_ANSWER_CHARS, fit_answer, response_payload, response_url_allowed
from bot.slack_app.commands import APP_COMMANDS, ASK_COMMAND, SETTINGS_COMMAND, manifest_commands
from bot.slack_app.listeners.commands import APP_COMMAND_JOBS, command_names, job_type
from bot.tools.registry import ToolRegistry
from bot.tools.slash_job import SLASH_COMMAND


def test_manifest_lists_ask_settings_and_every_tool_command():
    registry_commands = {spec.command.lstrip("/") for spec in default_registry().slash_commands()}
    listed = manifest_commands()
    assert [c.command for c in listed] == sorted(registry_commands | {"ask", "settings"})
    assert {"calc", "time", "weather", "search", "usage", "forget"} <= registry_commands
    manifest = build_manifest(url="https://bot.example.com", commands=listed)
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == {f"/{c.command}" for c in listed}
    assert all(len(c["description"]) <= 100 for c in manifest["features"]["slash_commands"])


def test_manifest_includes_plugin_modules_it_is_given():
    names = [c.command for c in manifest_commands(["tests.support.admin_tool_plugin"])]
    assert "purge" in names and "ask" in names


def test_bot_manifest_needs_no_settings_database_or_network():
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "manifest", "--url", "https://bot.example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    commands = {c["command"] for c in json.loads(out)["features"]["slash_commands"]}
    assert commands == {f"/{c.command}" for c in manifest_commands()}


def test_every_command_gets_a_listener_and_ask_its_own_job():
    names = command_names(default_registry())
    assert names[0] == "/ask" and len(names) == len(set(names))
    assert set(names) == {f"/{c.command}" for c in manifest_commands()}
    assert job_type("/ask") is ASK and job_type("/calc") is SLASH_COMMAND
    assert job_type("/settings") is SETTINGS


def test_a_tool_cannot_take_over_ask_or_settings():
    def ask(ctx, question: str) -> str:
        """Not the real one."""
        return question

    def settings(ctx, text: str) -> str:
        """Not the real one either."""
        return text

    registry = ToolRegistry()
    registry.add(ask, command=ASK_COMMAND.command)
    registry.add(settings, command=SETTINGS_COMMAND.command)
    assert command_names(registry) == ["/ask", "/settings"]


def test_answers_are_ephemeral_unless_public_and_fit_a_markdown_block():
    private = response_payload("**4**", public=False)
    assert private == {
        "response_type": "ephemeral",
        "text": "**4**",
        "blocks": [{"type": "markdown", "text": "**4**"}],
        "unfurl_links": False,  # no link previews (DESIGN-NOTES, Slack)
        "unfurl_media": False,
    }
    assert response_payload("x", public=True)["response_type"] == "in_channel"
    assert response_payload("  ", public=False)["text"] == "Done."
    long = "\n".join(f"line {n} " + "x" * 90 for n in range(300))
    cut = fit_answer(long)
    assert len(cut) <= MAX_ANSWER_CHARS and cut.endswith(CUT_NOTE)
    assert long.startswith(cut.removesuffix(CUT_NOTE))


def test_answers_go_only_to_slack_or_the_configured_slack_host():
    api = "http://127.0.0.1:4000/api/"
    assert response_url_allowed("https://hooks.slack.com/commands/T1/1/abc", "https://slack.com/api/")
    assert response_url_allowed("http://127.0.0.1:4000/response/x", api)
    assert not response_url_allowed("http://hooks.slack.com/commands/T1/1/abc", "https://slack.com/api/")
    assert not response_url_allowed("https://hooks.slack.com.evil.example/x", "https://slack.com/api/")
    assert not response_url_allowed("http://169.254.169.254/latest", api)
    assert not response_url_allowed("", api)


def test_every_app_command_in_the_manifest_enqueues_its_own_job():
    assert set(APP_COMMAND_JOBS) == {f"/{command.command}" for command in APP_COMMANDS}
    assert SLASH_COMMAND not in APP_COMMAND_JOBS.values()
