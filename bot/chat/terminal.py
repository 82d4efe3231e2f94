"""The terminal as the reply job's "Slack": the few Web API methods the job calls, writing to
a text stream instead. Streamed answers appear as they are generated.

Anything else a tool might call answers with a SlackApiError ("not_available_in_terminal"),
which the job and the tools already handle as an unavailable Slack feature.
"""

from __future__ import annotations

import getpass
import itertools
import threading
import time
from typing import TextIO

from slack_sdk.errors import SlackApiError

from bot.agent.steps import Step, terminal_line

LOCAL_TEAM = "local"
LOCAL_CHANNEL = "terminal"
LOCAL_USER = "ULOCAL"
BOT_USER = "ULOCALBOT"


class _TsClock:
    """Slack-style ts values ("seconds.micros"), strictly increasing within the process."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            micros = max(int(time.time() * 1_000_000), self._last + 1)
            self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


TS = _TsClock()


class TerminalStream:
    """A streamed answer: its text as it comes, and each tool step as a line of its own
    ("… searching messages for 'x'", then "✓ searching messages for 'x'")."""

    def __init__(self, terminal: TerminalClient):
        self.terminal = terminal
        self.ts: str | None = None
        self._mid_line = False

    def append(self, *, markdown_text: str | None = None, chunks=None, **_) -> None:
        if self.ts is None:
            self.ts = TS.next()
        for chunk in chunks or ():
            if getattr(chunk, "type", None) == "task_update":
                step = Step(id=chunk.id, name="", title=chunk.title, status=chunk.status)
                self.terminal.write(("\n" if self._mid_line else "") + f"  {terminal_line(step)}\n")
                self._mid_line = False
        if markdown_text:
            if not self._mid_line:
                self.terminal.write("bot> ")
            self.terminal.write(markdown_text)
            self._mid_line = not markdown_text.endswith("\n")

    def stop(self, *, markdown_text: str | None = None, **_) -> None:
        if markdown_text:
            self.append(markdown_text=markdown_text)
        if self.ts is None:
            self.ts = TS.next()
        self.terminal.write("\n")


class TerminalClient:
    token = None

    def __init__(self, out: TextIO, *, user_name: str | None = None):
        self.out = out
        self.user_name = user_name or _login_name()
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    # -- the Web API methods the reply job uses ---------------------------------------

    def chat_stream(self, **_) -> TerminalStream:
        return TerminalStream(self)

    def chat_postMessage(self, *, text: str = "", **_) -> dict:
        self.write(f"bot> {text}\n")
        return {"ok": True, "ts": TS.next()}

    def chat_update(self, *, ts: str, text: str = "", **_) -> dict:
        return {"ok": True, "ts": ts}  # the terminal already shows what was streamed

    def chat_stopStream(self, *, ts: str, markdown_text: str | None = None, **_) -> dict:
        """Only an answer that was stopped ends this way: its note, then a new line."""
        self.write((markdown_text or "").strip("\n").join(("\n", "\n")))
        return {"ok": True, "ts": ts}

    def assistant_threads_setStatus(self, **_) -> dict:
        return {"ok": True}

    def users_info(self, *, user: str, **_) -> dict:
        name = self.user_name if user == LOCAL_USER else user
        return {"ok": True, "user": {"id": user, "name": name, "profile": {"display_name": name}}}

    def auth_test(self, **_) -> dict:
        return {"ok": True, "user_id": BOT_USER, "bot_id": None, "team_id": LOCAL_TEAM}

    def conversations_info(self, *, channel: str, **_) -> dict:
        return {"ok": True, "channel": {"id": channel, "is_im": True, "user": LOCAL_USER}}

    def conversations_replies(self, **_) -> dict:
        return {"ok": True, "messages": []}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def unavailable(**_):
            answer = {"ok": False, "error": "not_available_in_terminal"}
            raise SlackApiError(f"{name} is not available in the terminal", answer)

        return unavailable


class TerminalSlack:
    """Stands in for SlackClients: every team's client is the terminal."""

    def __init__(self, client: TerminalClient):
        self.client = client

    def for_team(self, team_id: str) -> TerminalClient:
        return self.client


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "you"


_ids = itertools.count(1)


def new_file_id() -> str:
    return f"FLOCAL{int(time.time())}{next(_ids)}"
