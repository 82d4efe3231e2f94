"""Every model call goes through here: budget check, global admission, the call, reconciliation.

A 429 pauses the whole pool (every process) for the server's Retry-After (at most
MAX_PAUSE_SECONDS, whatever the headers say) and the call is tried again after the pause
without spending a job attempt, as long as no text has been shown yet. Once text is shown, and
for every other failure, the error goes up to the queue, which retries the job with backoff;
the job's re-run rewrites its message from the start, so a retry never repeats text. A
RateLimitedError that reaches the queue (text already shown, or MAX_RATE_LIMITED_TRIES
refusals in a row) reschedules the job without counting an attempt either (bot.failures):
rate limits never burn the retry budget. The x-ratelimit-* headers of every response, success
or 429, go to the limiter as the server's view of the window.

A 400 naming an argument the server does not recognize (Heroku refused ``stream_options`` that
way, DESIGN-NOTES) drops the argument and sends again at once, without a job attempt; the
refusal is remembered for the process and in the database, where other dynos read it
(every REFUSALS_REFRESH_SECONDS). A response without ``usage`` is counted with an estimate
(bot.inference.usage) marked ``estimated``: budgets, /usage, bot stats and the limiter all
see it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.failures import Permanent
from bot.inference.client import Completion, InferenceClient
from bot.inference.errors import RateLimitedError, UnknownArgumentError
from bot.inference.refusals import refused_arguments, remember_refusal
from bot.inference.sse import Usage
from bot.inference.usage import estimated_usage
from bot.limits.admission import GlobalRateLimiter, Ticket, record_usage
from bot.limits.budgets import BudgetPolicy, channel_over_budget, over_budget, record_channel_usage
from bot.limits.server_view import capped_pause, server_view
from bot.limits.tokens import estimate_request
from bot.limits.window import INTERACTIVE_LANE

log = logging.getLogger(__name__)

DEFAULT_PAUSE_SECONDS = 5.0
MAX_RATE_LIMITED_TRIES = 5
REFUSALS_REFRESH_SECONDS = 30.0


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
    # Told (calls ahead in the limiter's line, seconds until our slot) whenever admission waits.
    on_line: Callable[[int, float], None] | None = None
    lane: str = INTERACTIVE_LANE  # the job's lane: its place in the limiter's fair line
    # The attached model to call (Settings.attached_models; Settings.model_for(kind) routes job
    # kinds; channel settings pass a channel's chosen model). None: the INFERENCE attachment's.
    model: str | None = None
    # Where the answer goes, for the channel's daily budget (its `budget` setting); "" for none.
    channel_id: str = ""
    channel_daily_tokens: int | None = None


class ModelGateway:
    def __init__(
        self,
        client: InferenceClient,
        limiter: GlobalRateLimiter,
        sessions: sessionmaker[Session],
        *,
        budgets: BudgetPolicy | None = None,
        max_output_tokens: int = 1024,
        models: Mapping[str, tuple[InferenceClient, GlobalRateLimiter]] | None = None,
    ):
        """``client`` and ``limiter``: the INFERENCE attachment; ``models``: model id -> the
        attachment serving it, for calls that name a model (``CallContext.model``)."""
        self.client = client
        self.limiter = limiter
        self.sessions = sessions
        self.budgets = budgets or BudgetPolicy()
        self.max_output_tokens = max_output_tokens
        self.models = dict(models or {})
        self._refusals_read_at: dict[str, float] = {}  # completions URL -> when its refusals were read
        self._refusals_lock = threading.Lock()

    def _attachment(self, model: str | None) -> tuple[InferenceClient, GlobalRateLimiter]:
        if model is None or model == self.client.model:
            return self.client, self.limiter
        found = self.models.get(model)
        if found is None:  # e.g. a channel setting naming a model since detached
            log.warning("inference model_not_attached model=%s using=%s", model, self.client.model)
            return self.client, self.limiter
        return found

    def call(
        self,
        body: Mapping[str, Any],
        ctx: CallContext,
        *,
        on_text: Callable[[str], None] | None = None,
        prompt_caching: bool = True,
    ) -> Completion:
        """One model call, always streamed (long answers never hit a read timeout as one
        silent wait). ``on_text`` gets the text as it comes.

        A 429 is waited out and the call tried again only while nothing has been shown:
        once ``on_text`` has had text, any failure goes up to the job, whose re-run rewrites
        its Slack message from the start, so no text is ever shown twice.
        """
        body = dict(body)
        body.setdefault("max_tokens", self.max_output_tokens)
        self._check_budget(ctx)
        request = estimate_request(body)
        estimate = request.total
        shown = False
        client, limiter = self._attachment(ctx.model)
        self._learn_refusals(client)

        def show(text: str) -> None:
            nonlocal shown
            if text:
                shown = True
            if on_text is not None:
                on_text(text)

        for _ in range(MAX_RATE_LIMITED_TRIES):
            ticket = limiter.admit(
                estimate,
                prompt_tokens=request.prompt,
                should_stop=ctx.should_stop,
                on_wait=ctx.on_wait,
                on_line=ctx.on_line,
                lane=ctx.lane,
            )
            started = time.monotonic()
            sent_at = ticket.sent_at()
            try:
                completion = client.stream(body, on_text=show, prompt_caching=prompt_caching)
            except RateLimitedError as exc:
                limiter.pause(capped_pause(exc.retry_after, DEFAULT_PAUSE_SECONDS))
                if shown:
                    # Refused mid-stream after text was shown: tokens were spent (keep the
                    # estimate), and only the job may start the answer over.
                    raise
                # The server refused before answering: it spent no tokens, but keep the request slot counted.
                limiter.reconcile(
                    ticket.reservation_id,
                    0,
                    view=server_view(exc.headers, time.time()),
                    admitted_at=ticket.admitted_at,
                    refused=True,
                    sent_at=sent_at,
                )
                continue
            except UnknownArgumentError as exc:
                if not self._refuse(client, exc.argument):
                    raise
                # Refused before any answer: no tokens spent (the request slot stays counted);
                # send again at once without it.
                limiter.reconcile(ticket.reservation_id, 0, admitted_at=ticket.admitted_at, sent_at=sent_at)
                continue
            except Exception:
                # Unknown whether the server counted it: keep the estimate reserved.
                raise
            return self._account(
                limiter, ticket, request.prompt, estimate, completion, ctx, time.monotonic() - started, sent_at
            )
        raise RateLimitedError("the model kept answering 429", retry_after=DEFAULT_PAUSE_SECONDS)

    def _learn_refusals(self, client: InferenceClient) -> None:
        """Arguments another dyno found refused, read at most every REFUSALS_REFRESH_SECONDS."""
        now = time.monotonic()
        with self._refusals_lock:
            if now - self._refusals_read_at.get(client.url, float("-inf")) < REFUSALS_REFRESH_SECONDS:
                return
            self._refusals_read_at[client.url] = now
        try:
            with self.sessions() as session:
                known = refused_arguments(session, client.url)
        except Exception as exc:  # the call goes on; a refusal would teach it again
            log.warning("inference refusals_read_failed error=%s", type(exc).__name__)
            return
        for argument in known:
            client.refuse_argument(argument)

    def _refuse(self, client: InferenceClient, argument: str) -> bool:
        """Leave ``argument`` out from now on, here and (through the database) on every dyno."""
        if not client.refuse_argument(argument):
            return False
        log.warning("inference argument_refused argument=%s (left out from now on)", argument)
        try:
            with self.sessions.begin() as session:
                remember_refusal(session, client.url, argument)
        except Exception as exc:
            log.warning("inference refusal_not_shared error=%s", type(exc).__name__)
        return True

    def _check_budget(self, ctx: CallContext) -> None:
        channel_budget = ctx.channel_daily_tokens if ctx.channel_id else None
        if not self.budgets.enabled and channel_budget is None:
            return
        with self.sessions() as session:
            reason = channel_over_budget(
                session, team_id=ctx.team_id, channel_id=ctx.channel_id, daily_tokens=channel_budget
            )
            if self.budgets.enabled:
                reason = over_budget(session, self.budgets, team_id=ctx.team_id, user_id=ctx.user_id) or reason
        if reason:
            raise OverBudget(reason)

    def _account(
        self,
        limiter: GlobalRateLimiter,
        ticket: Ticket,
        prompt_estimate: int,
        estimate: int,
        completion: Completion,
        ctx: CallContext,
        seconds: float,
        sent_at: float,
    ) -> Completion:
        usage: Usage | None = completion.usage
        if usage is None:
            usage = estimated_usage(prompt_estimate, completion.content, completion.tool_calls, completion.reasoning)
            completion = dataclasses.replace(completion, usage=usage)
        actual = usage.total_tokens

        def record(session: Session) -> None:
            if usage:
                record_usage(
                    session,
                    team_id=ctx.team_id,
                    user_id=ctx.user_id,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            if ctx.channel_id:  # what the channel's budget counts (the estimate when no usage came)
                record_channel_usage(session, team_id=ctx.team_id, channel_id=ctx.channel_id, tokens=actual)

        limiter.reconcile(
            ticket.reservation_id,
            actual,
            also=record,
            view=server_view(completion.rate_limit_headers, time.time()),
            admitted_at=ticket.admitted_at,
            # Only the server's own count calibrates the prompt estimates, never our estimate of it.
            prompt_tokens=None if usage.estimated else usage.prompt_tokens,
            sent_at=sent_at,
        )
        log.info(
            "inference done team=%s estimated_tokens=%d prompt_tokens=%s completion_tokens=%s usage=%s duration_ms=%d",
            ctx.team_id,
            estimate,
            usage.prompt_tokens,
            usage.completion_tokens,
            "estimated" if usage.estimated else "reported",
            seconds * 1000,
        )
        return completion
