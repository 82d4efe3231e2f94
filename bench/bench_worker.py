"""One benchmark worker process: the real Worker, RateLimiter, ModelGateway and
NotificationListener, composed as bot/runtime.py composes them, with one handler for the
job kind ``bench_call``.

Run by bench.limiter_bench (settings from the environment, like ``bot worker``)::

    python -m bench.bench_worker --stats-out PATH

The only additions are observers: the inference client counts calls in flight at the
server, and the limiter remembers each admission's database time so the gap between
admission and sending can be measured. Neither changes a decision. On SIGTERM the worker
drains like the real one and writes its counters to ``--stats-out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.config import Settings, load_settings
from bot.db.engine import make_engine, make_session_factory
from bot.db.listen import NotificationListener
from bot.inference.client import Completion, InferenceClient
from bot.inference.errors import RateLimitedError
from bot.inference.gateway import CallContext, ModelGateway
from bot.limits import admission
from bot.limits.admission import Booking, RateLimiter, rate_limits
from bot.limits.budgets import BudgetPolicy
from bot.logs import configure_logging
from bot.queue import store
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler
from bot.queue.worker import Worker

BENCH_JOB = "bench_call"
# The request body carries the job id so the fake's records show which job each request served.
JOB_ID_FIELD = "bench_job_id"


class InflightGauge:
    """Calls in flight at the server: the peak and the time-weighted mean."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.started_calls = 0
        self.rate_limited = 0
        self.send_delays: list[float] = []  # seconds from admission (database clock) to sending
        self._area = 0.0
        self._since: float | None = None
        self._last = 0.0

    def _advance(self, now: float) -> None:
        if self._since is None:
            self._since = now
        self._area += self.current * (now - self._last) if self._last else 0.0
        self._last = now

    def enter(self, send_delay: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._advance(now)
            self.current += 1
            self.started_calls += 1
            self.peak = max(self.peak, self.current)
            if send_delay is not None:
                self.send_delays.append(send_delay)

    def leave(self, *, rate_limited: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self._advance(now)
            self.current -= 1
            self.rate_limited += int(rate_limited)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            span = (self._last - self._since) if self._since is not None else 0.0
            delays = sorted(self.send_delays)
        return {
            "peak_inflight": self.peak,
            "mean_inflight": self._area / span if span > 0 else 0.0,
            "calls": self.started_calls,
            "rate_limited": self.rate_limited,
            "send_delays": delays,
        }


class ObservedLimiter(RateLimiter):
    """The real limiter; remembers each thread's last booking for the send-delay measurement."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last_ticket = threading.local()

    def acquire(self, names, tokens: int, **kwargs) -> Booking:
        booking = super().acquire(names, tokens, **kwargs)
        self.last_ticket.value = booking
        return booking


class ObservedClient(InferenceClient):
    """The real client; counts calls in flight and the delay since admission."""

    def __init__(self, *args, gauge: InflightGauge, limiter: ObservedLimiter, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gauge = gauge
        self.limiter = limiter

    def complete(self, body: Mapping[str, Any], *, prompt_caching: bool = True) -> Completion:
        return self._observed(lambda: super(ObservedClient, self).complete(body, prompt_caching=prompt_caching))

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        on_text: Callable[[str], None] | None = None,
        prompt_caching: bool = True,
    ) -> Completion:
        # The gateway streams every call: observing complete() alone counted nothing.
        return self._observed(
            lambda: super(ObservedClient, self).stream(body, on_text=on_text, prompt_caching=prompt_caching)
        )

    def _observed(self, send: Callable[[], Completion]) -> Completion:
        ticket = getattr(self.limiter.last_ticket, "value", None)
        self.gauge.enter(time.time() - ticket.sent_at if ticket and ticket.sent_at else None)
        rate_limited = False
        try:
            return send()
        except RateLimitedError:
            rate_limited = True
            raise
        finally:
            self.gauge.leave(rate_limited=rate_limited)


class BenchCall(JobHandler):
    """Send the job's payload body through the gateway, like a reply job's model call."""

    def __init__(self, gateway: ModelGateway):
        self.gateway = gateway

    def run(self, ctx: JobContext) -> None:
        body = {**ctx.job.payload["body"], JOB_ID_FIELD: ctx.job.id}
        self.gateway.call(body, CallContext(ctx.job.team_id, ctx.job.user_id, should_stop=ctx.should_stop))


def build(settings: Settings, gauge: InflightGauge) -> tuple[Worker, NotificationListener, Callable[[], None]]:
    """bot.runtime.build_worker with the bench handler and the observers."""
    engine = make_engine(settings.database_url, pool_size=settings.worker_concurrency + 2)
    sessions = make_session_factory(engine)
    limiter = ObservedLimiter(sessions, rate_limits(settings))
    client = ObservedClient(
        settings.inference_url or "",
        settings.inference_key or "",
        settings.inference_model_id,
        timeout=settings.inference_timeout_seconds,
        gauge=gauge,
        limiter=limiter,
    )
    gateway = ModelGateway(
        client,
        limiter,
        sessions,
        budgets=BudgetPolicy(settings.daily_token_budget_per_user, settings.daily_token_budget_per_team),
        max_output_tokens=settings.inference_max_output_tokens,
    )
    worker = Worker(
        sessions,
        {BENCH_JOB: BenchCall(gateway)},
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=1.0,
    )
    listener = NotificationListener(
        settings.database_url,
        {store.NOTIFY_CHANNEL: worker.wake, admission.NOTIFY_CHANNEL: limiter.paused_elsewhere},
        on_reconnect=worker.wake,
    )
    return worker, listener, engine.dispose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A benchmark worker (see bench.limiter_bench).")
    parser.add_argument("--stats-out", required=True, help="where to write the counters as JSON on exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level)
    gauge = InflightGauge()
    worker, listener, dispose = build(settings, gauge)
    worker.install_signal_handlers()
    listener.start()
    listener.connected.wait(10)
    print("bench worker ready", flush=True)
    try:
        worker.run()
    finally:
        listener.stop()
        dispose()
        with open(args.stats_out, "w") as out:
            json.dump(gauge.summary(), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
