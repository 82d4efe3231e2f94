"""Every model call goes through here: budget check, a slot in its model's pool, the call, its answer.

A call names a model (``CallContext.model``; default: the INFERENCE attachment's). Attachments of
that model form a pool: the limiter books the call on the attachment where it can start first
(bot.limits.admission). An attachment answering 429, 5xx or nothing is paused, for the server's
Retry-After after a 429 (at most MAX_PAUSE_SECONDS, whatever the headers say) or DOWN_PAUSE_SECONDS;
calls booked on it move to the others, and this call is tried again, on another attachment if
the pool has one, without spending a job attempt, as long as no text has been shown yet. Once
text is shown, and for every other failure, the error goes up to the queue, which retries the
job with backoff; the job's re-run rewrites its message from the start, so a retry never repeats
text. A RateLimitedError that reaches the queue (text already shown, or MAX_RATE_LIMITED_TRIES
refusals in a row) reschedules the job without counting an attempt either (bot.failures). The
x-ratelimit-remaining-* headers of every answer, 200 or 429, are kept with the call as the
provider's view (bot.limits.slots).

A 400 naming an argument the server does not recognize (Heroku refused ``stream_options`` that
way, DESIGN-NOTES) drops the argument and sends again at once, without a job attempt; the
refusal is remembered for the process and in the database, where other dynos read it
(every REFUSALS_REFRESH_SECONDS). A response without ``usage`` is counted with an estimate
(bot.inference.usage) marked ``estimated``: budgets, /usage and bot stats see it; the limiter
keeps the call's own estimate.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.failures import Permanent
from bot.inference.client import Completion, InferenceClient
from bot.inference.errors import RateLimitedError, RetryableError, UnknownArgumentError
from bot.inference.refusals import refused_arguments, remember_refusal
from bot.inference.sse import Usage
from bot.inference.usage import estimated_usage
from bot.limits.admission import Booking, RateLimiter, attachment_limits, record_usage
from bot.limits.budgets import BudgetPolicy, channel_over_budget, over_budget, record_channel_usage
from bot.limits.headers import remaining
from bot.limits.slots import View
from bot.limits.tokens import estimate_request

log = logging.getLogger(__name__)

DEFAULT_PAUSE_SECONDS = 5.0  # after a 429 that says nothing about when to come back
DOWN_PAUSE_SECONDS = 10.0  # after a 5xx or no answer, when the pool has another attachment
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
    # Told (seconds until its slot, reason) whenever the call has to wait for its slot.
    on_wait: Callable[[float, str], None] | None = None
    # Told (calls booked ahead of it, seconds until its slot) whenever the call has to wait.
    on_line: Callable[[int, float], None] | None = None
    # The attached model to call (Settings.attached_models; Settings.model_for(kind) routes job
    # kinds; channel settings pass a channel's chosen model). None: the INFERENCE attachment's.
    model: str | None = None
    # Where the answer goes, for the channel's daily budget (its `budget` setting); "" for none.
    channel_id: str = ""
    channel_daily_tokens: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """One attachment the gateway calls: its limiter name and its client (URL, key, model)."""

    name: str
    client: InferenceClient

    @property
    def model(self) -> str:
        return self.client.model


class ModelGateway:
    def __init__(
        self,
        endpoints: Sequence[Endpoint] | InferenceClient,
        limiter: RateLimiter,
        sessions: sessionmaker[Session],
        *,
        budgets: BudgetPolicy | None = None,
        max_output_tokens: int = 1024,
    ):
        """``endpoints``: every attachment, the INFERENCE one first (a bare client: that one alone,
        under the limiter's first name)."""
        if isinstance(endpoints, InferenceClient):
            endpoints = [Endpoint(next(iter(limiter.limits)), endpoints)]
        self.endpoints = list(endpoints)
        self.limiter = limiter
        self.sessions = sessions
        self.budgets = budgets or BudgetPolicy()
        self.max_output_tokens = max_output_tokens
        self._refusals_read_at: dict[str, float] = {}  # completions URL -> when its refusals were read
        self._refusals_lock = threading.Lock()

    @property
    def client(self) -> InferenceClient:
        """The INFERENCE attachment's client."""
        return self.endpoints[0].client

    def pool(self, model: str | None) -> list[Endpoint]:
        """The attachments serving ``model`` (None: the INFERENCE attachment's model)."""
        wanted = model or self.endpoints[0].model
        found = [e for e in self.endpoints if e.model == wanted]
        if not found:  # e.g. a channel setting naming a model since detached
            log.warning("inference model_not_attached model=%s using=%s", wanted, self.endpoints[0].model)
            found = [e for e in self.endpoints if e.model == self.endpoints[0].model]
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

        A refused or failed call is tried again only while nothing has been shown: once
        ``on_text`` has had text, any failure goes up to the job, whose re-run rewrites its
        Slack message from the start, so no text is ever shown twice.
        """
        body = dict(body)
        body.setdefault("max_tokens", self.max_output_tokens)
        self._check_budget(ctx)
        request = estimate_request(body)
        pool = {e.name: e for e in self.pool(ctx.model)}
        shown = False

        def show(text: str) -> None:
            nonlocal shown
            if on_text is not None:
                shown = shown or bool(text)
                on_text(text)

        for _ in range(MAX_RATE_LIMITED_TRIES * len(pool)):
            # Before booking: once the call's slot comes, nothing may delay the request (it counts
            # from the moment it was marked sent; a later arrival would bunch it with the next window's).
            for candidate in pool.values():
                self._learn_refusals(candidate.client)
            booking = self.limiter.acquire(
                list(pool),
                request.total,
                prompt_tokens=request.prompt,
                should_stop=ctx.should_stop,
                on_wait=ctx.on_wait,
                on_line=ctx.on_line,
            )
            endpoint = pool[booking.name]
            booking = self.limiter.departing(booking)
            started = time.monotonic()
            try:
                completion = endpoint.client.stream(body, on_text=show, prompt_caching=prompt_caching)
            except RateLimitedError as exc:
                # Refused: the provider did not count it (unless text was shown: then it did).
                self.limiter.settle(booking, view=_view(exc.headers), refused=not shown)
                self.limiter.pause(
                    booking.name, exc.retry_after if exc.retry_after is not None else DEFAULT_PAUSE_SECONDS
                )
                if shown:
                    raise
                continue
            except UnknownArgumentError as exc:
                # Refused before any answer: no tokens spent; send again at once without it.
                self.limiter.settle(booking, refused=True)
                if not self._refuse(endpoint.client, exc.argument):
                    raise
                continue
            except RetryableError:
                # A 5xx or no answer: whether the provider counted it is unknown, so its estimate stays.
                self.limiter.settle(booking)
                if len(pool) == 1:
                    raise  # nowhere else to go: the job retries with backoff
                self.limiter.pause(booking.name, DOWN_PAUSE_SECONDS)
                if shown:
                    raise
                continue
            except BaseException:
                self.limiter.settle(booking)
                raise
            return self._account(booking, request.prompt, completion, ctx, time.monotonic() - started)
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
        self, booking: Booking, prompt_estimate: int, completion: Completion, ctx: CallContext, seconds: float
    ) -> Completion:
        usage: Usage | None = completion.usage
        if usage is None:
            usage = estimated_usage(prompt_estimate, completion.content, completion.tool_calls, completion.reasoning)
            completion = dataclasses.replace(completion, usage=usage)
        estimated = bool(usage.estimated)

        def record(session: Session) -> None:
            record_usage(
                session,
                team_id=ctx.team_id,
                user_id=ctx.user_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
            if ctx.channel_id:  # what the channel's budget counts (the estimate when no usage came)
                record_channel_usage(session, team_id=ctx.team_id, channel_id=ctx.channel_id, tokens=usage.total_tokens)

        # An estimated usage is recorded; the limiter counts it at no less than the call's own
        # estimate (prompt + max_tokens, the most the provider can have charged) and calibrates
        # only from the provider's own counts.
        self.limiter.settle(
            booking,
            used=usage.total_tokens,
            prompt_tokens=None if estimated else usage.prompt_tokens,
            view=_view(completion.rate_limit_headers),
            also=record,
        )
        log.info(
            "inference done team=%s attachment=%s estimated_tokens=%d prompt_tokens=%s completion_tokens=%s"
            " usage=%s duration_ms=%d",
            ctx.team_id,
            booking.name,
            booking.estimate,
            usage.prompt_tokens,
            usage.completion_tokens,
            "estimated" if estimated else "reported",
            seconds * 1000,
        )
        return completion


def _view(headers: Mapping[str, str]) -> View | None:
    requests, tokens = remaining(headers)
    return None if requests is None and tokens is None else View(requests, tokens)


def build_gateway(settings: Any, sessions: sessionmaker[Session], *, timeout: float | None = None) -> ModelGateway:
    """The gateway over every attachment in ``settings`` (bot.config.Settings), one limiter for all."""
    timeout = settings.inference_timeout_seconds if timeout is None else timeout
    endpoints = [
        Endpoint(a.name, InferenceClient(a.url, a.key, a.model_id, timeout=timeout)) for a in settings.attachments
    ] or [Endpoint("inference", InferenceClient("", "", settings.inference_model_id, timeout=timeout))]
    return ModelGateway(
        endpoints,
        RateLimiter(sessions, attachment_limits(settings)),
        sessions,
        budgets=BudgetPolicy(settings.daily_token_budget_per_user, settings.daily_token_budget_per_team),
        max_output_tokens=settings.inference_max_output_tokens,
    )
