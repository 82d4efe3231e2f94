"""`bot check`: one line per item, OK or what to do."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings, missing_for


@dataclass(frozen=True)
class CheckResult:
    item: str
    ok: bool
    detail: str
    warning: bool = False  # printed as WARN; does not fail `bot check`


def run_checks(settings: Settings) -> list[CheckResult]:
    results = [_variables(settings)]
    database_ok = _database(settings, results)
    if settings.is_postgres:
        results.append(_connections(settings))
    results.append(_slack(settings))
    results.extend(_report_channel(settings, database_ok))
    results.extend(_inference(settings, database_ok))
    results.extend(_mcp_servers(settings, database_ok))
    return results


def _mcp_servers(settings: Settings, database_ok: bool) -> list[CheckResult]:
    """Each MCP server, fetched now: reachable, authenticated, its tools, which need approval.
    With the database up, what was found is recorded, and the workers follow it."""
    if not settings.mcp_servers:
        return []
    from bot.db.engine import make_engine, make_session_factory
    from bot.mcp import status
    from bot.mcp.catalog import McpCatalog
    from bot.mcp.state import UNAUTHORIZED, UP

    engine = make_engine(settings.database_url) if database_ok else None
    try:
        catalog = McpCatalog(
            settings.mcp_servers,
            timeout=settings.mcp_timeout_seconds,
            refresh_seconds=settings.mcp_refresh_seconds,
            on_refresh=status.recorder(make_session_factory(engine)) if engine is not None else None,
        )
        states = catalog.refresh()
    finally:
        if engine is not None:
            engine.dispose()
    results = []
    for state in states:
        item = f"mcp {state.name}"
        if state.status == UNAUTHORIZED:
            results.append(CheckResult(item, False, f"reachable, not authenticated: {state.detail}"))
            continue
        if state.status != UP:
            results.append(CheckResult(item, False, f"not reachable: {state.detail}"))
            continue
        names = ", ".join(tool.name for tool in state.tools) or "none"
        approval = ", ".join(tool.name for tool in state.tools if tool.needs_approval) or "none"
        detail = f"reachable, authenticated; {len(state.tools)} tools: {names}; need approval: {approval}"
        results.append(CheckResult(item, True, detail))
        for sentence in state.left_out:
            results.append(CheckResult(item, True, sentence, warning=True))
    return results


def _variables(settings: Settings) -> CheckResult:
    problems = missing_for(settings, "slack", "inference")
    if problems:
        return CheckResult("variables", False, " ".join(problems))
    mode = "OAuth (many workspaces)" if settings.oauth_enabled else "single workspace"
    return CheckResult("variables", True, f"set; Slack mode: {mode}; model: {settings.inference_model_id}")


def _database(settings: Settings, results: list[CheckResult]) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db.engine import make_engine, ping
    from bot.db.migrate import current_revision, head_revision

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = make_engine(settings.database_url)
    try:
        ping(engine)
        current, head = current_revision(engine), head_revision(settings.database_url)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:160]
        results.append(CheckResult("database", False, f"{where} is not reachable ({reason}); check DATABASE_URL."))
        return False
    finally:
        engine.dispose()
    results.append(CheckResult("database", True, f"{where} is reachable"))
    if current != head:
        results.append(CheckResult("migrations", False, f"at {current or 'none'}, head is {head}: run `bot migrate`."))
        return False
    results.append(CheckResult("migrations", True, f"at head ({head})"))
    return True


def _connections(settings: Settings) -> CheckResult:
    from bot.db.connections import connection_budget

    budget = connection_budget(
        web_concurrency=settings.web_concurrency,
        worker_concurrency=settings.worker_concurrency,
        limit=settings.database_connection_limit,
    )
    return CheckResult("connections", True, budget.describe(), warning=not budget.fits)


def _slack(settings: Settings) -> CheckResult:
    from slack_sdk.errors import SlackApiError

    from bot.slack.clients import web_client

    if not settings.slack_bot_token:
        if settings.oauth_enabled:
            return CheckResult("slack", True, "OAuth mode: tokens come from installations (/slack/install)")
        return CheckResult("slack", False, "no SLACK_BOT_TOKEN to test; set it from your Slack app's OAuth page.")
    try:
        response = web_client(settings, settings.slack_bot_token).auth_test()
    except SlackApiError as exc:
        return CheckResult(
            "slack",
            False,
            f"auth.test failed ({exc.response.get('error')}): reinstall the app and copy a fresh Bot User OAuth Token.",
        )
    except Exception as exc:
        return CheckResult("slack", False, f"Slack is not reachable ({type(exc).__name__}); check SLACK_API_URL.")
    return CheckResult("slack", True, f"auth.test OK: bot {response.get('user_id')} in team {response.get('team_id')}")


def _report_channel(settings: Settings, database_ok: bool) -> list[CheckResult]:
    """The moderation report channel: the bot must be a member to post there (no
    chat:write.public; conversations.info succeeds anyway, so ``is_member`` decides), and any
    refusal a report met is shown once more here (bot.moderation.store)."""
    from slack_sdk.errors import SlackApiError

    from bot.moderation.report import invite_hint
    from bot.slack.clients import web_client

    results: list[CheckResult] = []
    channel = settings.moderation_report_channel
    if channel and settings.slack_bot_token:
        client = web_client(settings, settings.slack_bot_token)
        try:
            info = client.conversations_info(channel=channel).get("channel") or {}
            problem = "is_archived" if info.get("is_archived") else None if info.get("is_member") else "not_in_channel"
            name = str(client.auth_test().get("user") or "the bot")
        except SlackApiError as exc:
            problem, name = str(exc.response.get("error") or "channel_not_found"), "the bot"
        except Exception as exc:
            problem, name = f"Slack is not reachable ({type(exc).__name__})", "the bot"
        if problem is None:
            results.append(CheckResult("report channel", True, f"the bot can post in <#{channel}>"))
        else:
            results.append(CheckResult("report channel", False, f"{problem}: {invite_hint(channel, problem, name)}"))
    if database_ok:
        results.extend(_report_problems(settings))
    return results


def _report_problems(settings: Settings) -> list[CheckResult]:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db.engine import make_engine, make_session_factory
    from bot.moderation import store
    from bot.moderation.report import invite_hint

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            problems = [(p.team_id, p.channel_id, p.error) for p in store.report_problems(session)]
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()
    return [
        CheckResult(
            "reports", False, f"team {team}: reports to <#{channel}> fail ({error}); {invite_hint(channel, error)}"
        )
        for team, channel, error in problems
    ]


def _inference(settings: Settings, database_ok: bool) -> list[CheckResult]:
    """One call to each attachment (INFERENCE, INFERENCE_2, ...), through the shared limiter when
    the database is up."""
    if not settings.has_inference:
        return [CheckResult("inference", False, " ".join(missing_for(settings, "inference")))]
    if not database_ok:
        return [_call_attachment(attachment, None) for attachment in settings.attachments]
    from bot.db.engine import make_engine, make_session_factory
    from bot.limits.admission import RateLimiter, attachment_limits

    engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(engine)
        limiter = RateLimiter(sessions, attachment_limits(settings))
        return [_call_attachment(attachment, (limiter, sessions)) for attachment in settings.attachments]
    finally:
        engine.dispose()


def _call_attachment(attachment, shared) -> CheckResult:
    from bot.inference.client import InferenceClient
    from bot.inference.errors import InferenceError
    from bot.inference.gateway import CallContext, Endpoint, ModelGateway

    label = "inference" if attachment.alias == "INFERENCE" else f"inference ({attachment.alias})"
    body = {"messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 5}
    with InferenceClient(attachment.url, attachment.key, attachment.model_id, timeout=30) as client:
        try:
            if shared is not None:  # every call goes through the shared limiter, this one too
                limiter, sessions = shared
                gateway = ModelGateway([Endpoint(attachment.name, client)], limiter, sessions)
                completion = gateway.call(body, CallContext(team_id="check", user_id="check"))
            else:
                completion = client.complete(body)
        except InferenceError as exc:
            return CheckResult(label, False, f"{attachment.model_id} failed: {exc.message}")
    tokens = completion.usage.total_tokens if completion.usage else "?"
    return CheckResult(label, True, f"{attachment.model_id} answered ({tokens} tokens)")
