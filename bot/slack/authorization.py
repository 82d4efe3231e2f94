"""Single-workspace authorization: one auth.test per process, made at boot, not per event.

Bolt's default calls auth.test on the first event each process handles; doing it at boot
keeps every event free of Slack read calls (and a slow Slack out of the 3-second ack).
"""

from __future__ import annotations

import logging
import threading

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class SingleWorkspaceAuthorization:
    def __init__(self, client: WebClient):
        self.client = client
        self._result: AuthorizeResult | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Best effort at boot; if Slack is unreachable now, the first event tries again."""
        try:
            self.authorize()
        except (SlackApiError, OSError) as error:
            log.warning("auth.test at boot failed error=%s", type(error).__name__)

    def bolt_authorize(self):
        """A plain function for Bolt's `authorize=` (Bolt passes arguments by their names, and
        a bound method's `self` confuses it)."""

        def authorize() -> AuthorizeResult:
            return self.authorize()

        return authorize

    def authorize(self) -> AuthorizeResult:
        with self._lock:
            if self._result is None:
                response = self.client.auth_test()
                self._result = AuthorizeResult.from_auth_test_response(
                    auth_test_response=response, bot_token=self.client.token
                )
            return self._result
