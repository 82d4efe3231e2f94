"""Every model call goes through here: budget check, global admission, the call, reconciliation.

A 429 pauses the whole pool (every process) for the server's Retry-After and the call is
tried again after the pause without spending a job attempt. After MAX_RATE_LIMITED_TRIES
refusals the RateLimitedError goes up to the queue, which reschedules the job without
counting an attempt either (bot.failures): rate limits never burn the retry budget. Other
failures go up to the queue, which retries with backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.failures import Permanent
from bot.inference.client import Completion, InferenceClient
from bot.inference.errors import RateLimitedError
from bot.limits.admission import GlobalRateLimiter, record_usage
from bot.limits.budgets import BudgetPolicy, over_budget
from bot.limits.tokens import estimate_request_tokens

log = logging.getLogger(__name__)

DEFAULT_PAUSE_SECONDS = 5.0
MAX_RATE_LIMITED_TRIES = 5


class OverBudget(Permanent):
    """The user or workspace spent its daily token budget; no call was made. ``message`` is
    the sentence the user is told."""

    reason = "over_budget"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.detail = message


@dataclass(frozen=True)
class CallContext:
    team_id: str
    user_id: str
    should_stop: Callable[[], bool] = lambda: False
    # Told (seconds until capacity frees, reason) whenever admission has to wait.
    on_wait: Callable[[float, str], None] | None = None


class ModelGateway:
    def __init__(
        self,
        client: InferenceClient,
        limiter: GlobalRateLimiter,
        sessions: sessionmaker[Session],
        *,
        budgets: BudgetPolicy | None = None,
        max_output_tokens: int = 1024,
    ):
        self.client = client
        self.limiter = limiter
        self.sessions = sessions
        self.budgets = budgets or BudgetPolicy()
        self.max_output_tokens = max_output_tokens

    def call(
        self,
        body: Mapping[str, Any],
        ctx: CallContext,
        *,
        on_text: Callable[[str], None] | None = None,
        prompt_caching: bool = True,
    ) -> Completion:
        body = dict(body)
        body.setdefault("max_tokens", self.max_output_tokens)
        self._check_budget(ctx)
        estimate = estimate_request_tokens(body)
        for _ in range(MAX_RATE_LIMITED_TRIES):
            ticket = self.limiter.admit(estimate, should_stop=ctx.should_stop, on_wait=ctx.on_wait)
            started = time.monotonic()
            try:
                if on_text is not None:
                    completion = self.client.stream(body, on_text=on_text, prompt_caching=prompt_caching)
                else:
                    completion = self.client.complete(body, prompt_caching=prompt_caching)
            except RateLimitedError as exc:
                # The server refused: it spent no tokens, but keep the request slot counted.
                self.limiter.reconcile(ticket.reservation_id, 0)
                self.limiter.pause(exc.retry_after if exc.retry_after is not None else DEFAULT_PAUSE_SECONDS)
                continue
            except Exception:
                # Unknown whether the server counted it: keep the estimate reserved.
                raise
            self._account(ticket.reservation_id, estimate, completion, ctx, time.monotonic() - started)
            return completion
        raise RateLimitedError("the model kept answering 429", retry_after=DEFAULT_PAUSE_SECONDS)

    def _check_budget(self, ctx: CallContext) -> None:
        if not self.budgets.enabled:
            return
        with self.sessions() as session:
            reason = over_budget(session, self.budgets, team_id=ctx.team_id, user_id=ctx.user_id)
        if reason:
            raise OverBudget(reason)

    def _account(
        self, reservation_id: int, estimate: int, completion: Completion, ctx: CallContext, seconds: float
    ) -> None:
        usage = completion.usage
        actual = usage.total_tokens if usage else estimate

        def record(session: Session) -> None:
            if usage:
                record_usage(
                    session,
                    team_id=ctx.team_id,
                    user_id=ctx.user_id,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )

        self.limiter.reconcile(reservation_id, actual, also=record)
        log.info(
            "inference done team=%s estimated_tokens=%d prompt_tokens=%s completion_tokens=%s duration_ms=%d",
            ctx.team_id,
            estimate,
            usage.prompt_tokens if usage else "-",
            usage.completion_tokens if usage else "-",
            seconds * 1000,
        )
