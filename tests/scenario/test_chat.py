"""`bot chat` in one process: the terminal session (bot.chat.session) with the worker in a thread,
as the command runs it, reading lines from a string. (It ran as a `bot chat` subprocess in
tests/e2e/test_operations.py; the settings it sets, not the pipe, are its point. The pipe, the
history across runs and images stay there.)"""

from __future__ import annotations

import io
import subprocess

from bot.chat.session import run_chat
from bot.config import load_settings
from tests.fakes.inference import FakeInference
from tests.support.processes import INFERENCE_KEY, bot_env


def chat_in_process(env: dict[str, str], *, stdin: str) -> subprocess.CompletedProcess:
    """What `bot chat` prints for ``stdin``, and its exit status, as `run_cli(env, "chat", …)` gives them."""
    out = io.StringIO()
    code = run_chat(load_settings(env), io.StringIO(stdin), out)
    return subprocess.CompletedProcess(["bot", "chat"], code, out.getvalue(), "")


def test_chat_follows_the_workspace_defaults_it_sets(database_url):
    with FakeInference(api_key=INFERENCE_KEY) as inference:
        env = bot_env(database_url, INFERENCE_URL=inference.url, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="")
        lines = "/settings instructions Speak like a lighthouse keeper.\n/settings tools teleport\nhello\n/settings\n"
        chat = chat_in_process(env, stdin=lines)
        assert chat.returncode == 0, chat.stderr
        assert "Unknown tool: teleport." in chat.stdout and "Usage: /settings tools" in chat.stdout
        assert "*instructions*: “Speak like a lighthouse keeper.” — _set here, by <@ULOCAL>" in chat.stdout
        [request] = [r.body for r in inference.requests if isinstance(r.body, dict)]
        system = request["messages"][0]["content"]
        assert system.endswith("Speak like a lighthouse keeper.")
