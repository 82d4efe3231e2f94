"""Load benchmark through Slack: a burst of mentions, two worker processes, the fakes' limits.

    python -m bench.load_bench burst [--accounting corrected|reserved] [--mentions 240]
    python -m bench.load_bench burst --reset oldest|replenished|zero --headers always|none|only_429
    python -m bench.load_bench burst --headers-stop-after 12        # headers stop 12 s into the burst
    python -m bench.load_bench burst --external 0.2 [--external-lead 7]
    python -m bench.load_bench burst --attachments 2 [--down-after 8]   # INFERENCE + INFERENCE_2
    python -m bench.load_bench slow-slack [--mentions 36]
    python -m bench.load_bench sigterm [--mentions 120]

Each run makes a scratch PostgreSQL database, the fake Slack in this process (latency per Web API
call, chat.postMessage limited to one a second per channel, 429 with Retry-After beyond), the
fake model in its own process (tests/fakes/inference.py: a sliding window of 40 requests and
80,000 tokens per 6 s, charging as ``--accounting`` says, optionally shared with "another app"
using ``--external`` of the request limit, in full swing ``--external-lead`` seconds before the
burst, or starting with the bot at 0; its headers read ``reset`` as ``--reset`` says and come as
``--headers`` says, or stop ``--headers-stop-after`` seconds after its first request); with
``--attachments N``, N such fakes attached as INFERENCE, INFERENCE_2, ... of one model, the last
going down ``--down-after`` seconds after its first request; one ``bot web`` and two ``bot worker`` processes. It
sends signed ``app_mention`` events, each starting its own thread in one channel, all at once,
and waits (with a deadline) until every job is settled.

Figures, from the fakes' own records:
- utilization: admitted requests (ours + the other app's) and tokens charged (final charges)
  per whole window [a0 + iW, a0 + (i+1)W) from the first admitted arrival a0 to the last, over
  the limits; the binding limit is the larger of the two;
- 429s: responses of 429 the fake model sent;
- answers per minute: mentions / (last job finished - first job created) x 60;
- bot messages per thread: bot messages in each mention's thread (goal: exactly one);
- repeated model calls: mentions whose text reached the model more than once;
- commits per reply: the scratch database's xact_commit over the run / mentions (PostgreSQL also
  counts each pooled connection's pre-ping there), and with ``--count-commits`` the transactions
  the bot's processes committed (bench/commit_probe) / mentions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.limiter_bench import Child, create_database, dump_log
from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests as sr
from tests.support.processes import INFERENCE_KEY, SIGNING_SECRET, bot_env, start_web, start_worker

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CHANNEL = "CLOAD"
MARKER = re.compile(r"load-(\d+)")
MAX_REQUESTS = 40
MAX_TOKENS = 80_000
WINDOW = 6.0


# -- the fake model, as its own process, recording each request's fate ------------------------------


class RecordingFake(FakeInference):
    """The test fake, recording (arrival, charge, admitted, mention number) per request."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.decisions: list[list[Any]] = []
        self._current = threading.local()

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        found = MARKER.search(json.dumps(body.get("messages") or []))
        self._current.mention = int(found.group(1)) if found else None
        return super()._answer(body)

    def _admit(self, now: float, tokens: int, reserved: int | None = None):
        refusal, headers, charge = super()._admit(now, tokens, reserved)
        self.decisions.append([now, charge, refusal is None, getattr(self._current, "mention", None)])
        return refusal, headers, charge

    def records(self) -> dict[str, Any]:
        with self._lock:
            decisions = [
                [at, charge.tokens if charge is not None else 0, ok, mention]
                for at, charge, ok, mention in self.decisions
            ]
        external = [[at, tokens] for at, tokens, is_external in self.limit.charges() if is_external]
        return {"decisions": decisions, "external": external, "external_total": self.limit.external_requests}


def serve_fake(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--accounting", default="corrected")
    parser.add_argument("--max-requests", type=int, default=MAX_REQUESTS)
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--window", type=float, default=WINDOW)
    parser.add_argument("--latency-min", type=float, default=0.5)
    parser.add_argument("--latency-max", type=float, default=2.0)
    parser.add_argument("--external", type=float, default=0.0, help="share of the request limit another app uses")
    parser.add_argument("--reset", default="oldest")
    parser.add_argument("--headers", default="always")
    parser.add_argument("--headers-stop-after", type=float, default=None, help="seconds after the first request")
    parser.add_argument("--down-after", type=float, default=None, help="seconds after the first request")
    parser.add_argument("--api-key", default=INFERENCE_KEY)
    args = parser.parse_args(argv)
    fake = RecordingFake(
        api_key=args.api_key,
        reset=args.reset,
        headers=args.headers,
        max_requests=args.max_requests,
        max_tokens=args.max_tokens,
        window=args.window,
        latency_min=args.latency_min,
        latency_max=args.latency_max,
        accounting=args.accounting,
    ).start()
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    external_log: list[float] = []
    if args.external > 0:
        per_window = max(1, round(args.external * args.max_requests))
        every = args.window / per_window
        tokens = round(args.external * args.max_tokens / per_window)

        def other_app() -> None:  # a steady stream of calls we never see but in the headers
            while not stop.wait(every):
                fake.use_external(requests=1, tokens=tokens)
                external_log.append(time.monotonic())

        threading.Thread(target=other_app, daemon=True).start()

    def timers() -> None:  # headers that stop coming, an attachment that goes down: after the first request
        while not stop.wait(0.01) and not fake.requests:
            pass
        first = fake.requests[0].arrival if fake.requests else time.monotonic()
        if args.headers_stop_after is not None:
            fake.headers_stop_at = first + args.headers_stop_after
        if args.down_after is not None and not stop.wait(max(0.0, first + args.down_after - time.monotonic())):
            fake.down_at = time.monotonic()
            fake.set_down(True)

    threading.Thread(target=timers, daemon=True).start()
    print(fake.url, flush=True)
    stop.wait()
    fake.stop()
    Path(args.records).write_text(
        json.dumps({**fake.records(), "external_log": external_log, "down_at": getattr(fake, "down_at", None)})
    )
    return 0


# -- analysis --------------------------------------------------------------------------------------


def utilization(records: dict[str, Any], window: float, limits: tuple[int, int]) -> dict[str, Any]:
    """Per whole window from the first admitted arrival to the last: ours + the other app's."""
    ours = sorted((d for d in records["decisions"] if d[2]), key=lambda d: d[0])
    refused = sum(1 for d in records["decisions"] if not d[2])
    result: dict[str, Any] = {"responses_429": refused, "admitted": len(ours)}
    if not ours:
        return result
    first, last = ours[0][0], ours[-1][0]
    whole = int((last - first) // window)
    windows = [[0, 0] for _ in range(whole)]
    charges = [(d[0], d[1]) for d in ours] + [(at, tokens) for at, tokens in records.get("external", [])]
    external_arrivals = records.get("external_log", [])
    for arrival, tokens in charges:
        index = int((arrival - first) // window)
        if 0 <= index < whole:
            windows[index][1] += tokens
    for arrival, _ in [(d[0], d[1]) for d in ours]:
        index = int((arrival - first) // window)
        if 0 <= index < whole:
            windows[index][0] += 1
    for arrival in external_arrivals:
        index = int((arrival - first) // window)
        if 0 <= index < whole:
            windows[index][0] += 1
    result["windows"] = windows
    if whole:
        result["util_requests"] = sum(w[0] for w in windows) / (whole * limits[0])
        result["util_tokens"] = sum(w[1] for w in windows) / (whole * limits[1])
        result["binding"] = "requests" if result["util_requests"] >= result["util_tokens"] else "tokens"
        result["util_binding"] = max(result["util_requests"], result["util_tokens"])
        result["whole_windows"] = whole
    calls = Counter(d[3] for d in ours if d[3] is not None)
    result["mentions_called_twice"] = sum(1 for n in calls.values() if n > 1)
    result["mentions_called"] = len(calls)
    return result


def retried_in_flight(per_fake: list[dict[str, Any]], latency_max: float) -> int:
    """Mentions called more than once whose every earlier call reached an attachment that went
    down while it was answering (admitted less than the fake's longest latency before): the answer
    never came back, so the call had to go again elsewhere (the rest would be work done twice)."""
    calls: dict[int, list[tuple[float, float | None]]] = {}
    for record in per_fake:
        for arrival, _, _, mention in record["decisions"]:
            if mention is not None:
                calls.setdefault(mention, []).append((arrival, record.get("down_at")))
    retried = 0
    for made in calls.values():
        if len(made) < 2:
            continue
        earlier = sorted(made)[:-1]
        if all(down is not None and down - latency_max <= at <= down for at, down in earlier):
            retried += 1
    return retried


# -- one run ---------------------------------------------------------------------------------------


def xact_commit(url: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        return int(
            connection.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()[0]
        )


def dump_jobs(url: str, path: Path) -> None:
    """When each job was created, started and finished (to set the limiter's log beside the jobs)."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        rows = connection.execute(
            "SELECT id, kind, attempts, extract(epoch FROM created_at), extract(epoch FROM started_at),"
            " extract(epoch FROM finished_at) FROM jobs ORDER BY id"
        ).fetchall()
    keys = ("id", "kind", "attempts", "created", "started", "finished")
    path.write_text(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], default=float))


def departure_lag(url: str) -> dict[str, float | None]:
    """How long after being marked sent the requests left (the answer moves sent_at to the
    departure; the slot keeps the moment it was marked), in seconds: median and p99."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        lags = sorted(
            row[0]
            for row in connection.execute(
                "SELECT sent_at - slot FROM rate_reservations WHERE sent_at IS NOT NULL AND answered_at IS NOT NULL"
            ).fetchall()
        )
    if not lags:
        return {"departure_lag_median_s": None, "departure_lag_p99_s": None}
    return {
        "departure_lag_median_s": round(lags[len(lags) // 2], 3),
        "departure_lag_p99_s": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3),
    }


def job_summary(url: str) -> dict[str, Any]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        counts = dict(connection.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
        span = connection.execute(
            "SELECT extract(epoch FROM max(finished_at) - min(created_at)) FROM jobs WHERE kind = 'reply'"
        ).fetchone()[0]
        attempts = connection.execute("SELECT coalesce(sum(attempts), 0) FROM jobs").fetchone()[0]
    return {"jobs": counts, "span_s": float(span or 0), "attempts": int(attempts)}


def settled(url: str, total: int) -> bool:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE status IN ('done', 'dead')), count(*) FROM jobs WHERE kind = 'reply'"
        ).fetchone()
    return row[1] >= total and row[0] >= total


def send_mentions(url: str, total: int) -> list[str]:
    """Signed app_mention events, each its own thread in CHANNEL, sent all at once."""
    client = httpx.Client(timeout=20, limits=httpx.Limits(max_connections=32))
    bodies = []
    for n in range(total):
        event = sr.app_mention(f"<@UBOT> question load-{n}: what is a dyno?", channel=CHANNEL, user=f"U{n % 50:03d}")
        bodies.append((event["ts"], json.dumps(sr.event_callback(event)).encode()))

    def send(item: tuple[str, bytes]) -> int:
        raw = item[1]
        headers = {**sr.signed_headers(SIGNING_SECRET, raw), "Content-Type": "application/json"}
        return client.post(f"{url}/slack/events", content=raw, headers=headers).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, bodies))
    client.close()
    failures = sum(1 for s in statuses if s != 200)
    if failures:
        raise RuntimeError(f"{failures} events were not acknowledged")
    return [ts for ts, _ in bodies]


def bot_messages_per_thread(slack: FakeSlack, thread_ts: list[str]) -> Counter:
    per_thread = Counter({ts: 0 for ts in thread_ts})
    for message in slack.bot_messages(CHANNEL):
        if message.get("thread_ts") in per_thread:
            per_thread[message["thread_ts"]] += 1
    return Counter(per_thread.values())  # {messages in a thread: threads}


def run(kind: str, opts: argparse.Namespace) -> dict[str, Any]:
    case = f"{opts.accounting}-{opts.reset}-{opts.headers}-{opts.attachments}-{int(opts.external * 100)}"
    tag = f"{kind}-{case}-{int(time.time())}"
    run_dir = RESULTS / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    slow = kind == "slow-slack"
    with ExitStack() as stack:
        url = create_database(stack, f"bench_load_{os.getpid()}")
        limits = (10**6, 10**9) if slow else (MAX_REQUESTS, MAX_TOKENS)
        fakes, records, inference_env = [], [], {}
        latency_max = 1.0 if slow else 2.0  # the fake model's longest answer, seconds
        fake_started = time.monotonic()  # the other app (--external) starts with the fake
        for number in range(opts.attachments):
            alias = "INFERENCE" if number == 0 else f"INFERENCE_{number + 1}"
            records.append(run_dir / f"fake-{number}.json")
            command = [
                sys.executable, "-m", "bench.load_bench", "--serve-fake", "--records", str(records[-1]),
                "--accounting", opts.accounting, "--max-requests", str(limits[0]), "--max-tokens", str(limits[1]),
                "--window", str(WINDOW), "--external", str(opts.external if number == 0 else 0.0),
                "--latency-min", "0.5", "--latency-max", str(latency_max),
                "--reset", opts.reset, "--headers", opts.headers, "--api-key", f"{INFERENCE_KEY}-{number}",
            ]  # fmt: skip
            if opts.headers_stop_after is not None:
                command += ["--headers-stop-after", str(opts.headers_stop_after)]
            if opts.down_after is not None and number == opts.attachments - 1 and number > 0:
                command += ["--down-after", str(opts.down_after)]
            fake = Child(command, dict(os.environ), run_dir / f"fake-{number}.log", capture=True)
            stack.callback(fake.stop)
            fakes.append(fake)
            inference_env.update(
                {
                    f"{alias}_URL": fake.read_line(20),
                    f"{alias}_KEY": f"{INFERENCE_KEY}-{number}",
                    f"{alias}_MODEL_ID": "claude-4-5-haiku",
                    f"{alias}_MAX_REQUESTS_PER_MINUTE": str(limits[0]),
                    f"{alias}_MAX_TOKENS_PER_MINUTE": str(limits[1]),
                    f"{alias}_RATE_WINDOW_SECONDS": str(WINDOW),
                }
            )
        slack = FakeSlack(latency=3.0 if slow else 0.02, post_limit_per_channel=1)
        slack.start()
        stack.callback(slack.stop)
        probe = run_dir / "commits"
        extra: dict[str, str] = {}
        if opts.count_commits:
            probe.mkdir(exist_ok=True)
            paths = [str(REPO / "bench" / "commit_probe"), os.environ.get("PYTHONPATH", "")]
            extra = {"BENCH_COMMIT_PROBE": str(probe), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        env = bot_env(
            url,
            **extra,
            SLACK_API_URL=slack.api_url,
            **inference_env,
            INFERENCE_RATE_MARGIN_SECONDS=str(opts.margin),
            WEB_CONCURRENCY="1",
            WORKER_CONCURRENCY="2" if slow else str(opts.concurrency),
            JOB_LEASE_SECONDS="6" if slow else "60",
            LOG_LEVEL="INFO",
        )
        web, web_url = start_web(env, run_dir, name="web")
        stack.callback(web.stop)
        workers = [start_worker(env, run_dir, name=f"worker-{i}") for i in range(2)]
        for worker in workers:
            stack.callback(worker.stop)
        if opts.external > 0:  # in full swing for --external-lead seconds before the burst
            time.sleep(max(0.0, fake_started + opts.external_lead - time.monotonic()))
        commits_before = xact_commit(url)
        started = time.monotonic()
        thread_ts = send_mentions(web_url, opts.mentions)
        sigterm: dict[str, Any] = {}
        if kind == "sigterm":
            sigterm = sigterm_one(workers[0], url, started, opts)
        deadline = started + opts.deadline
        while not settled(url, opts.mentions):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not settled within {opts.deadline}s; logs in {run_dir}")
            time.sleep(0.25)
        wall = time.monotonic() - started
        time.sleep(1.0)  # let the statistics collector catch up
        commits = xact_commit(url) - commits_before
        summary = {**job_summary(url), **departure_lag(url)}
        dump_log(url, run_dir / "rate_reservations.json")
        dump_jobs(url, run_dir / "jobs.json")
        per_thread = bot_messages_per_thread(slack, thread_ts)
        slack_calls = slack.all_calls()
        to_epoch = time.time() - time.monotonic()
        (run_dir / "slack_calls.json").write_text(json.dumps([[c.method, c.time + to_epoch] for c in slack_calls]))
        status_calls = [c for c in slack_calls if c.method == "assistant.threads.setStatus"]
        waiting_status = [c for c in status_calls if "ahead of yours" in json.dumps(c.params.get("loading_messages"))]
        for worker in workers:
            worker.stop()
        web.stop()
        for fake in fakes:
            fake.stop()
        bot_commits = None
        if opts.count_commits:
            bot_commits = sum(
                int(line.split(" ", 1)[0])
                for path in probe.glob("commits-*.txt")
                for line in path.read_text().splitlines()
            )
        per_fake = [json.loads(path.read_text()) for path in records]
        merged = {
            "decisions": [d for r in per_fake for d in r["decisions"]],
            "external": [e for r in per_fake for e in r.get("external", [])],
            "external_log": [e for r in per_fake for e in r.get("external_log", [])],
        }
        n = opts.attachments
        figures = utilization(merged, WINDOW, (limits[0] * n, limits[1] * n))
        if n > 1:
            figures["per_attachment"] = [
                {k: v for k, v in utilization(r, WINDOW, limits).items() if k != "windows"} for r in per_fake
            ]
            figures["down_at"] = [r.get("down_at") for r in per_fake]
            figures["mentions_retried_in_flight_when_down"] = retried_in_flight(per_fake, latency_max)
        result = {
            "kind": kind,
            "accounting": opts.accounting,
            "reset": opts.reset,
            "headers": opts.headers,
            "headers_stop_after": opts.headers_stop_after,
            "attachments": opts.attachments,
            "down_after": opts.down_after,
            "margin_s": opts.margin,
            "external": opts.external,
            "external_lead_s": opts.external_lead if opts.external else None,
            "mentions": opts.mentions,
            "wall_s": round(wall, 1),
            "answers_per_min": round(opts.mentions / summary["span_s"] * 60, 1) if summary["span_s"] else None,
            "bot_messages_per_thread": dict(per_thread),
            "posts_rate_limited_by_slack": slack.rate_limited_posts,
            "status_calls": len(status_calls),
            "waiting_status_calls": len(waiting_status),
            "commits_per_reply": round(commits / opts.mentions, 1),
            "bot_commits_per_reply": None if bot_commits is None else round(bot_commits / opts.mentions, 1),
            "load_avg_1m": os.getloadavg()[0],
            **summary,
            **{k: v for k, v in figures.items() if k != "windows"},
            "windows": figures.get("windows"),
            **sigterm,
        }
        (run_dir / "result.json").write_text(json.dumps(result, indent=2))
        return result


def sigterm_one(worker, url: str, started: float, opts: argparse.Namespace) -> dict[str, Any]:
    """SIGTERM the first worker mid-burst; how long it takes to exit, and how soon the jobs it
    handed back are running on the other worker."""
    time.sleep(opts.sigterm_after)
    signalled = time.monotonic()
    os.killpg(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(60)
    exited = time.monotonic() - signalled
    log = worker.output()
    released = sorted({int(m) for m in re.findall(r"job released(?:_at_shutdown)? id=(\d+)", log)})
    pickup = None
    if released:
        ids = ",".join(str(i) for i in released)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
                waiting = connection.execute(
                    f"SELECT count(*) FROM jobs WHERE id IN ({ids}) AND status = 'queued'"
                ).fetchone()[0]
            if waiting == 0:
                pickup = time.monotonic() - signalled - exited
                break
            time.sleep(0.05)
    return {
        "sigterm_exit_s": round(exited, 2),
        "sigterm_released": len(released),
        "sigterm_pickup_after_exit_s": None if pickup is None else round(max(pickup, 0.0), 2),
        "sigterm_requeued_after_lease_expiry": "requeued_after_lease_expiry" in log,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve-fake":
        return serve_fake(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("burst", "slow-slack", "sigterm"))
    parser.add_argument("--accounting", choices=("actual", "corrected", "reserved"), default="corrected")
    parser.add_argument("--external", type=float, default=0.0)
    parser.add_argument(
        "--external-lead",
        type=float,
        default=WINDOW + 1.0,
        help="seconds the other app runs before the burst (0: it starts with the bot, still rising)",
    )
    parser.add_argument("--reset", choices=("oldest", "replenished", "zero"), default="oldest")
    parser.add_argument("--headers", choices=("always", "none", "only_429"), default="always")
    parser.add_argument("--headers-stop-after", type=float, default=None, help="seconds after the first request")
    parser.add_argument(
        "--attachments", type=int, default=1, help="attachments of the same model (INFERENCE, INFERENCE_2, ...)"
    )
    parser.add_argument(
        "--down-after", type=float, default=None, help="the last attachment goes down this long after its first request"
    )
    parser.add_argument("--margin", type=float, default=0.1, help="INFERENCE_RATE_MARGIN_SECONDS")
    parser.add_argument("--mentions", type=int, default=None)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="WORKER_CONCURRENCY of each worker (default 16 per attachment: calls in flight scale with capacity)",
    )
    parser.add_argument("--deadline", type=float, default=600.0)
    parser.add_argument("--sigterm-after", type=float, default=12.0)
    parser.add_argument("--count-commits", action="store_true", help="count the bot's own commits (bench/commit_probe)")
    opts = parser.parse_args(argv)
    if opts.concurrency is None:
        opts.concurrency = 16 * opts.attachments
    if opts.mentions is None:
        opts.mentions = {"burst": 6 * MAX_REQUESTS * opts.attachments, "slow-slack": 36, "sigterm": 120}[opts.kind]
    result = run(opts.kind, opts)
    printable = {k: v for k, v in result.items() if k != "windows"}
    print(json.dumps(printable, indent=2))
    if result.get("windows"):
        print("windows (requests, tokens):", result["windows"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
