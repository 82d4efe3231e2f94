"""Every Slack Web API method the bot calls exists in the installed slack_sdk, and pyproject.toml
pins slack-sdk to a release that has them all (an older one would silently drop, say, the Stop
button: agents.sessions.setStatus is missing before 3.44.0)."""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

from slack_sdk import WebClient

ROOT = Path(__file__).resolve().parents[2]
# Method names slack_sdk gives Web API methods: "chat_postMessage" for chat.postMessage.
FAMILIES = (
    "agents_",
    "apps_",
    "assistant_",
    "auth_",
    "chat_",
    "conversations_",
    "files_",
    "oauth_",
    "reactions_",
    "team_",
    "users_",
    "views_",
)
PINNED = (3, 44, 0)


def called_methods() -> set[str]:
    """Calls in bot/ of slack_sdk Web API methods on a Slack client (``client.chat_update``,
    ``self.client…``, ``ctx.slack…``, ``self.slack.for_team(team)…``)."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name, receiver = node.func.attr, ast.unparse(node.func.value).lower()
                if name.startswith(FAMILIES) and ("client" in receiver or "slack" in receiver):
                    found.add(name)
    return found


def test_the_bot_calls_slack_methods():
    assert {
        "chat_postMessage",
        "agents_sessions_setStatus",
        "agents_sessions_rename",
        "chat_stream",
    } <= called_methods()


def test_every_slack_method_the_bot_calls_exists_in_the_installed_sdk():
    missing = sorted(name for name in called_methods() if not callable(getattr(WebClient, name, None)))
    assert not missing, f"slack_sdk {version('slack-sdk')} has no {missing}"


def test_pyproject_pins_the_first_release_that_has_them():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    [pin] = re.findall(r'"slack-sdk>=([0-9.]+)', text)
    assert tuple(int(part) for part in pin.split(".")) == PINNED
    installed = tuple(int(part) for part in re.findall(r"\d+", version("slack-sdk"))[:3])
    assert installed >= PINNED
