"""`bot migrate | web | worker | serve | chat | stats | manifest | check`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable

from bot.config import ConfigError, Settings, load_settings, require

log = logging.getLogger("bot.cli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot", description="A Slack AI bot on Heroku Managed Inference.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("migrate", help="apply database migrations (idempotent)")
    commands.add_parser("web", help="serve Slack events and /healthz with gunicorn on $PORT")
    commands.add_parser("worker", help="claim and run queued jobs")
    commands.add_parser("serve", help="web and worker in one process (local use; Socket Mode with SLACK_APP_TOKEN)")
    chat = commands.add_parser("chat", help="talk to the bot in this terminal, without Slack")
    chat.add_argument("--resume", action="store_true", help="continue the latest terminal conversation")
    stats = commands.add_parser("stats", help="queue, limiter and model usage per workspace")
    stats.add_argument("--json", action="store_true", help="print JSON")
    manifest = commands.add_parser("manifest", help="print the Slack app manifest as JSON")
    manifest.add_argument("--url", help="the app's public URL, e.g. https://APP.herokuapp.com")
    manifest.add_argument("--socket-mode", action="store_true", help="a development manifest for Socket Mode")
    commands.add_parser("check", help="diagnose the configuration")
    args = parser.parse_args(argv)

    if args.command == "manifest":
        return run_manifest(args.url, args.socket_mode)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return report_config_problems(exc.problems)

    from bot.logs import configure_logging

    configure_logging(settings.log_level)
    runners: dict[str, Callable[[Settings], int]] = {
        "chat": lambda s: run_chat(s, resume=args.resume),
        "stats": lambda s: run_stats(s, as_json=args.json),
        "migrate": run_migrate,
        "web": run_web,
        "worker": run_worker,
        "serve": run_serve,
        "check": run_check,
    }
    try:
        return runners[args.command](settings)
    except ConfigError as exc:
        return report_config_problems(exc.problems)
    except DatabaseUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 3


def report_config_problems(problems: list[str]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2


class DatabaseUnavailable(Exception):
    pass


def database_problem(settings: Settings, exc: Exception) -> DatabaseUnavailable:
    from sqlalchemy.engine import make_url

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
    return DatabaseUnavailable(
        f"The database at {where} is not reachable ({reason}): check DATABASE_URL and that the server is up."
    )


def run_migrate(settings: Settings) -> int:
    from sqlalchemy.exc import OperationalError

    from bot.db.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except OperationalError as exc:
        raise database_problem(settings, exc) from None
    print("Database migrated.")
    return 0


def ensure_migrated(settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from bot.db.engine import make_engine
    from bot.db.migrate import is_up_to_date, upgrade

    engine = make_engine(settings.database_url)
    try:
        if settings.database_url.startswith("sqlite") and not is_up_to_date(engine):
            upgrade(settings.database_url)  # local use: no separate release step
        elif not is_up_to_date(engine):
            raise ConfigError(["The database is not migrated: run `bot migrate` (the Procfile's release step does)."])
    except OperationalError as exc:
        raise database_problem(settings, exc) from None
    finally:
        engine.dispose()


def run_web(settings: Settings) -> int:
    ensure_migrated(settings)
    if not (settings.has_slack and settings.slack_signing_secret):
        # Right after a Heroku deploy: /healthz and /setup (the next steps) still serve.
        log.warning("slack not_configured: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (see /setup)")
    elif settings.socket_mode:
        log.info("web slack_over=http (SLACK_APP_TOKEN is for `bot serve`, Socket Mode)")
    from bot.web.app import create_web_app
    from bot.web.server import GunicornServer, gunicorn_options

    GunicornServer(lambda: create_web_app(settings), gunicorn_options(settings.port)).run()
    return 0


def run_worker(settings: Settings) -> int:
    require(settings, "inference")
    ensure_migrated(settings)
    if not settings.has_slack:
        log.warning("slack not_configured: replies cannot be posted until SLACK_BOT_TOKEN (or OAuth) is set")
    from bot.runtime import build_worker

    runtime = build_worker(settings)
    runtime.worker.install_signal_handlers()
    runtime.run()
    exit_now_if_abandoned(runtime.worker)
    return 0


def exit_now_if_abandoned(worker) -> None:
    """After SIGTERM the worker released every job it still held; a job thread stuck in a
    network call would keep the interpreter alive past the dyno's 30 s: exit without it."""
    if worker.abandoned:
        log.warning("worker exit_with_abandoned_threads=%d", worker.abandoned)
        logging.shutdown()
        os._exit(0)


SERVE_WITHOUT_SLACK = (
    "Slack is not configured (SLACK_BOT_TOKEN with SLACK_APP_TOKEN for Socket Mode, or with SLACK_SIGNING_SECRET "
    "for HTTP): to talk to the bot without Slack, run `bot chat`."
)


def run_serve(settings: Settings) -> int:
    """Web (a threaded wsgiref server) and the worker in one process, for local use. With
    SLACK_APP_TOKEN, Slack's events arrive over Socket Mode; /healthz is served either way."""
    if not settings.has_slack:
        print(SERVE_WITHOUT_SLACK, file=sys.stderr)
        return 2
    require(settings, "slack", "inference")
    ensure_migrated(settings)
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from bot.runtime import build_worker
    from bot.web.app import create_web_app

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # our app logs requests in logfmt already
            pass

    web_app = create_web_app(settings)
    server = make_server(
        "127.0.0.1", settings.port, web_app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
    runtime = build_worker(settings)
    runtime.worker.install_signal_handlers()
    socket_mode = None
    if settings.socket_mode:
        from bot.slack_app.socket_mode import SocketModeConnection

        socket_mode = SocketModeConnection(web_app.bolt, settings.slack_app_token, stopping=runtime.worker.stopping)
        socket_mode.start()
    log.info("serve listening port=%d slack_over=%s", settings.port, "socket_mode" if socket_mode else "http")
    try:
        runtime.run()
    finally:
        if socket_mode:
            socket_mode.close()
        server.shutdown()
    return 0


def run_chat(settings: Settings, *, resume: bool) -> int:
    """A conversation in this terminal through the queue, the limiter, the tools and the history store."""
    require(settings, "inference")
    ensure_migrated(settings)
    # The terminal is the conversation: logs go to stderr, and only warnings unless debugging.
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    if settings.log_level != "DEBUG":
        root.setLevel(logging.WARNING)
    from bot.chat.session import run_chat as chat

    return chat(settings, sys.stdin, sys.stdout, resume=resume)


def run_stats(settings: Settings, *, as_json: bool) -> int:
    ensure_migrated(settings)
    from sqlalchemy.exc import OperationalError

    from bot.db.engine import make_engine, make_session_factory
    from bot.limits.admission import RateLimiter, attachment_limits
    from bot.stats import collect, format_stats

    engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(engine)
        stats = collect(sessions, RateLimiter(sessions, attachment_limits(settings)))
    except OperationalError as exc:
        raise database_problem(settings, exc) from None
    finally:
        engine.dispose()
    print(json.dumps(stats, indent=2) if as_json else format_stats(stats))
    return 0


def run_manifest(url: str | None, socket_mode: bool) -> int:
    from bot.slack.manifest import build_manifest
    from bot.slack_app.commands import manifest_commands

    print(json.dumps(build_manifest(url=url, socket_mode=socket_mode, commands=manifest_commands()), indent=2))
    return 0


def run_check(settings: Settings) -> int:
    from bot.diagnostics import run_checks

    results = run_checks(settings)
    for result in results:
        label = "FAIL" if not result.ok else "WARN" if result.warning else "OK  "
        print(f"{label} {result.item}: {result.detail}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
