"""A thread's agent session and its status line, as one answer sees them.

While an answer is worked on, the session is `processing`: Slack shows its native Stop
button. Slack does not reset the status, so every way an answer ends moves it to `active`
(answered, failed or stopped alike: the session stays open for the next question), either
through chat.stopStream's `session_status` or agents.sessions.setStatus. Apps that are not
declared as agents get an error from setStatus; then nothing more is sent about sessions.

The status line (assistant.threads.setStatus) says what is happening, with rotating
`loading_messages`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

PROCESSING = "processing"
ACTIVE = "active"  # what every end of an answer moves the session to
SESSION_STATUSES = (PROCESSING, ACTIVE, "suspended", "closed")  # Slack's documented values


class AgentSession:
    def __init__(self, client: WebClient, *, channel: str, thread_ts: str, user_id: str = ""):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user_id = user_id
        self.processing = False  # we set `processing` and have not moved it on yet

    def start(self) -> None:
        try:
            self.client.agents_sessions_setStatus(
                channel_id=self.channel,
                thread_ts=self.thread_ts,
                status=PROCESSING,
                initiator_user_id=self.user_id or None,
            )
            self.processing = True
        except SlackApiError as error:  # not an agent app, or not this surface
            log.debug("agent_session unavailable error=%s", error.response.get("error"))
        except AttributeError:  # a client without the method (the terminal)
            pass

    @property
    def final_status(self) -> str | None:
        """What to pass as chat.stopStream's `session_status` (None: no session to move)."""
        return ACTIVE if self.processing else None

    def ended(self, *, by_stream: bool) -> None:
        """The answer ended; `by_stream`: chat.stopStream already moved the session on."""
        if not self.processing:
            return
        if by_stream:
            self.processing = False
            return
        try:
            self.client.agents_sessions_setStatus(channel_id=self.channel, thread_ts=self.thread_ts, status=ACTIVE)
            self.processing = False
        except SlackApiError as error:
            log.warning("agent_session end_failed error=%s", error.response.get("error"))

    def set_status(self, status: str, loading_messages: Sequence[str] = ()) -> None:
        """The thread's status line; idempotent, and optional (not every surface allows it)."""
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.channel,
                thread_ts=self.thread_ts,
                status=status,
                loading_messages=list(loading_messages) or None,
            )
        except SlackApiError as error:
            log.debug("reply status_unavailable error=%s", error.response.get("error"))

    def set_title(self, title: str) -> None:
        """The session's title: agent sessions are renamed with agents.sessions.rename (Slack's
        agent surface, 2026); assistant.threads.setTitle only for apps that are not agents."""
        if not title:
            return
        try:
            self.client.agents_sessions_rename(channel_id=self.channel, thread_ts=self.thread_ts, title=title)
            return
        except SlackApiError as error:
            log.debug("reply rename_unavailable error=%s", error.response.get("error"))
        except AttributeError:  # a client without the method (the terminal)
            return
        try:
            self.client.assistant_threads_setTitle(channel_id=self.channel, thread_ts=self.thread_ts, title=title)
        except SlackApiError as error:
            log.debug("reply title_unavailable error=%s", error.response.get("error"))
