"""Settings, read once from the environment at the entry point and passed down.

Nothing else in the package reads the environment. Problems are collected, not raised one
by one, so an operator sees every missing or invalid variable in one go, each as one
plain sentence saying what to do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.attachments import DEFAULT_MODEL, MAIN_ALIAS, ROUTES, Attachment, discover, published_limits, route_problem
from bot.moderation_policy import PolicyError, parse_policy

DEFAULT_DATABASE_URL = "sqlite:///bot.sqlite3"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# Heroku's cap on max_tokens ("max value: 4096 for Haiku models, 8192 for Sonnet models"); a
# model of another family gets the smaller one. Thinking needs a budget of at least 1024 tokens,
# below max_tokens (thinking tokens come out of max_tokens).
MODEL_MAX_OUTPUT_TOKENS = {"haiku": 4096, "sonnet": 8192}
DEFAULT_MODEL_MAX_OUTPUT_TOKENS = 4096
MIN_THINKING_BUDGET_TOKENS = 1024


def model_max_output_tokens(model: str) -> int:
    """The largest ``max_tokens`` Heroku accepts for ``model``."""
    for family, cap in MODEL_MAX_OUTPUT_TOKENS.items():
        if family in model.lower():
            return cap
    return DEFAULT_MODEL_MAX_OUTPUT_TOKENS


# MCP server names become part of the model's function names (OpenAI: ^[a-zA-Z0-9_-]{1,64}$),
# so they keep to the same characters, short enough to leave room for the tool's name.
MCP_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class McpServerConfig:
    """One entry of MCP_SERVERS. `headers` hold secrets (filled from the environment): they are
    left out of repr so no log line or traceback can carry them."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The server's tools offered to the model (None: all of them).
    tools: tuple[str, ...] | None = None
    # Tools that run without the asker's approval: a list, True (all), or None (the server's
    # readOnlyHint annotation decides).
    read_only: tuple[str, ...] | bool | None = None
    # "streamable_http", or "sse" for the older HTTP+SSE transport (a URL ending in /sse).
    transport: str = "streamable_http"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one sentence per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_app_token: str | None = None
    slack_admin_user_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    inference_url: str | None = None
    inference_key: str | None = None
    inference_model_id: str = DEFAULT_MODEL
    inference_max_requests_per_minute: int = 200
    inference_max_tokens_per_minute: int = 800_000
    inference_rate_window_seconds: float = 60.0
    # Absorbs the delay between our admission and the server counting the request.
    inference_rate_margin_seconds: float = 0.25
    inference_timeout_seconds: float = 60.0
    # The largest request body sent: Heroku serves Claude from Amazon Bedrock, whose documented
    # payload limit is 20 MB (DESIGN-NOTES, "Request size"); Anthropic's own 32 MB does not apply.
    inference_max_request_bytes: int = 20_000_000
    # The largest max_tokens of any call (the model's own cap: 4096 for Haiku, 8192 for Sonnet).
    inference_max_output_tokens: int = 4096
    # max_tokens of one chat answer call (what the limiter reserves for it), and how many
    # follow-up calls continue an answer cut off at that length.
    answer_max_tokens: int = 1024
    answer_continuations: int = 3
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 8
    worker_concurrency: int = 16
    daily_token_budget_per_user: int | None = None
    daily_token_budget_per_team: int | None = None
    system_prompt: str | None = None
    answer_thread_followups: bool = True
    answer_other_bots: bool = False
    max_tool_rounds: int = 5
    max_images_per_request: int = 10
    max_file_bytes: int = 20 * 1024 * 1024
    image_decode_concurrency: int = 2
    context_budget_tokens: int = 150_000
    # Documents (PDFs, text files): download cap, PDF page cap, characters of text kept per file.
    document_max_bytes: int = 10 * 1024 * 1024
    pdf_max_pages: int = 100
    document_max_chars: int = 100_000
    extended_thinking: bool = False
    thinking_budget_tokens: int = 2048  # part of inference_max_output_tokens, so below it
    show_reasoning: bool = False
    open_meteo_geocoding_url: str = "https://geocoding-api.open-meteo.com"
    open_meteo_forecast_url: str = "https://api.open-meteo.com"
    tool_modules: tuple[str, ...] = ()
    # Nobody waits long in silence: a queued note after this long, an apology after that.
    queued_notice_seconds: float = 5.0
    apology_after_seconds: float = 45.0
    moderation_channels: tuple[str, ...] = ()
    moderation_report_channel: str | None = None
    # Categories "name: description; …" (bot.moderation.policy); None: the built-in list.
    moderation_policy: str | None = None
    moderation_allow_reaction: str | None = None  # emoji name added to allowed images' messages
    port: int = 3000
    log_level: str = "INFO"
    # Stored messages, images, idempotency keys and finished jobs older than this are purged; 0 keeps them.
    retention_days: int = 30
    web_concurrency: int = 2  # gunicorn processes of `bot web` (WEB_CONCURRENCY, read by gunicorn too)
    # The Postgres plan's connection limit, for `bot check`'s connection budget. Heroku
    # essential-0 (and essential-1) allow 20 connections.
    database_connection_limit: int = 20
    # How long a state-changing tool call the model made waits for the asker's approval.
    approval_timeout_seconds: float = 24 * 3600.0
    # Interactive jobs one person may have waiting; beyond it a mention gets one message why (#22).
    max_queued_per_user: int = 20
    # Remote MCP servers whose tools the model may use (MCP_SERVERS), how often their tool lists
    # are fetched again, and how long one call may take.
    mcp_servers: tuple[McpServerConfig, ...] = ()
    mcp_refresh_seconds: float = 300.0
    mcp_timeout_seconds: float = 30.0
    # Attachments besides INFERENCE (INFERENCE_2, ...: bot.attachments), and the model each routed
    # job kind runs on (None: the INFERENCE attachment's model).
    extra_attachments: tuple[Attachment, ...] = ()
    moderation_model: str | None = None
    summary_model: str | None = None
    thinking_model: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def has_slack(self) -> bool:
        receives = self.slack_signing_secret or self.slack_app_token
        return bool(receives and (self.slack_bot_token or self.oauth_enabled))

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def has_inference(self) -> bool:
        return bool(self.inference_url and self.inference_key)

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        """Every attached model resource, INFERENCE first (those without a URL and key left out)."""
        main = Attachment(
            MAIN_ALIAS,
            self.inference_url or "",
            self.inference_key or "",
            self.inference_model_id,
            self.inference_max_requests_per_minute,
            self.inference_max_tokens_per_minute,
            self.inference_rate_window_seconds,
        )
        return ((main,) if self.has_inference else ()) + self.extra_attachments

    @property
    def attached_models(self) -> tuple[str, ...]:
        """The model ids the attachments serve, INFERENCE's first, each once. Channel settings
        (a channel's ``model``) offer exactly these; pass one as ``CallContext.model``."""
        models = [self.inference_model_id, *(a.model_id for a in self.extra_attachments)]
        return tuple(dict.fromkeys(models))

    def model_for(self, kind: str) -> str:
        """The model a job of ``kind`` ("moderation", "summary", "thinking"; anything else: an
        answer) runs on: its route (BOT_MODERATION_MODEL, ...) or the INFERENCE attachment's model."""
        routed = {"moderation": self.moderation_model, "summary": self.summary_model, "thinking": self.thinking_model}
        return routed.get(kind) or self.inference_model_id

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


INFERENCE_HINT = (
    "attach the model with `heroku ai:models:create -a APP claude-4-5-haiku --as INFERENCE`, "
    "or export INFERENCE_URL and INFERENCE_KEY from `heroku config -a APP` for local use"
)


def missing_for(settings: Settings, *needs: str) -> list[str]:
    """Sentences for what a command needs but the settings lack. `needs`: "slack", "inference"."""
    problems = []
    if "slack" in needs:
        # Socket Mode receives events over a websocket: no signed requests to verify.
        if not settings.slack_signing_secret and not settings.slack_app_token:
            problems.append(
                "SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page "
                "(create the app from `bot manifest`)."
            )
        if not (settings.slack_bot_token or settings.oauth_enabled):
            problems.append(
                "SLACK_BOT_TOKEN is not set: install the app to your workspace and copy the Bot User "
                "OAuth Token (xoxb-…), or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth."
            )
    if "inference" in needs:
        if not settings.inference_url:
            problems.append(f"INFERENCE_URL is not set: {INFERENCE_HINT}.")
        if not settings.inference_key:
            problems.append(f"INFERENCE_KEY is not set: {INFERENCE_HINT}.")
    return problems


def require(settings: Settings, *needs: str) -> None:
    problems = missing_for(settings, *needs)
    if problems:
        raise ConfigError(problems)


def normalize_database_url(raw: str) -> str:
    """Accept Heroku's postgres:// and plain postgresql://; use the psycopg 3 driver."""
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError("not a URL")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        parts = urlsplit("postgresql://" + rest)
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise ValueError("no host")
        return "postgresql+psycopg://" + rest
    if scheme == "sqlite":
        return "sqlite://" + rest
    raise ValueError(f"unsupported scheme {scheme!r}")


def retention_problems(values: Mapping[str, object]) -> list[str]:
    """RETENTION_DAYS must outlast an approval's wait: the purge would otherwise delete jobs
    parked for a person's answer (and their approvals) before the answer may come."""
    defaults = Settings()
    days = int(values.get("retention_days", defaults.retention_days))  # type: ignore[call-overload]
    wait = float(values.get("approval_timeout_seconds", defaults.approval_timeout_seconds))  # type: ignore[arg-type]
    if days > 0 and days * 86400 <= wait:
        return [
            f"RETENTION_DAYS is {days}, not longer than an approval may wait (BOT_APPROVAL_TIMEOUT_SECONDS="
            f"{wait:g}): pending approvals would be purged. Raise RETENTION_DAYS or lower the timeout."
        ]
    return []


def output_limit_problems(values: Mapping[str, object]) -> list[str]:
    """One sentence per way INFERENCE_MAX_OUTPUT_TOKENS and INFERENCE_THINKING_BUDGET_TOKENS
    (as read so far into ``values``) break the model's rules."""
    defaults = Settings()
    model = str(values.get("inference_model_id") or defaults.inference_model_id)
    max_output = int(values.get("inference_max_output_tokens") or defaults.inference_max_output_tokens)
    budget = int(values.get("thinking_budget_tokens") or defaults.thinking_budget_tokens)
    cap = model_max_output_tokens(model)
    problems = []
    if max_output > cap:
        problems.append(
            f"INFERENCE_MAX_OUTPUT_TOKENS is {max_output}, above the {cap} Heroku allows for {model}: "
            f"set it to {cap} or less."
        )
    if budget >= max_output:
        if max_output <= MIN_THINKING_BUDGET_TOKENS:
            fix = (
                f"raise INFERENCE_MAX_OUTPUT_TOKENS above {MIN_THINKING_BUDGET_TOKENS} (the smallest budget), "
                "since anyone can ask the bot to think hard"
            )
        else:
            example = max(MIN_THINKING_BUDGET_TOKENS, min(max_output, cap) // 2)
            fix = f"lower the budget (at least {MIN_THINKING_BUDGET_TOKENS}, e.g. {example})"
        problems.append(
            f"INFERENCE_THINKING_BUDGET_TOKENS is {budget}, not below INFERENCE_MAX_OUTPUT_TOKENS ({max_output}): "
            f"thinking tokens come out of the output limit; {fix}."
        )
    return problems


def parse_mcp_servers(raw: str, env: Mapping[str, str]) -> tuple[tuple[McpServerConfig, ...], list[str]]:
    """MCP_SERVERS (a JSON object: name → {"url", "headers", "tools", "read_only", "transport"}) → the
    servers and one sentence per problem. `${VAR}` in a header value is filled from `env`; the
    sentences name variables and headers, never a header's value."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return (), [f"MCP_SERVERS is not valid JSON ({exc.msg} at character {exc.pos}): see docs/mcp.md."]
    if not isinstance(data, dict):
        return (), ['MCP_SERVERS must be a JSON object of server name → {"url": …, "headers": {…}}.']
    servers, problems = [], []
    for name, entry in data.items():
        where = f"MCP_SERVERS server {name!r}"
        if not MCP_SERVER_NAME.match(name):
            problems.append(f"{where}: a server name is 1-24 letters, digits, '_' or '-'.")
            continue
        if not isinstance(entry, dict):
            problems.append(f'{where} must be an object with "url" and optional "headers", "tools", "read_only".')
            continue
        unknown = sorted(set(entry) - {"url", "headers", "tools", "read_only", "transport"})
        if unknown:
            problems.append(f"{where} has unknown keys {unknown}: use url, headers, tools, read_only and transport.")
            continue
        url = entry.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"{where} needs a url of http(s), like https://example.com/mcp.")
            continue
        transport = entry.get("transport") or ("sse" if parts.path.rstrip("/").endswith("/sse") else "streamable_http")
        if transport not in ("streamable_http", "sse"):
            problems.append(f'{where}: "transport" is "streamable_http" or "sse".')
            continue
        headers, header_problems = _mcp_headers(where, entry.get("headers", {}), env)
        problems.extend(header_problems)
        tools = entry.get("tools")
        if tools is not None and not (isinstance(tools, list) and all(isinstance(t, str) for t in tools)):
            problems.append(f'{where}: "tools" must be a list of tool names.')
            continue
        read_only = entry.get("read_only")
        if read_only is not None and not isinstance(read_only, bool):
            if not (isinstance(read_only, list) and all(isinstance(t, str) for t in read_only)):
                problems.append(f'{where}: "read_only" must be a list of tool names, or true for all of them.')
                continue
            read_only = tuple(read_only)
        if not header_problems:
            servers.append(
                McpServerConfig(
                    name=name,
                    url=url,
                    headers=headers,
                    tools=tuple(tools) if tools is not None else None,
                    read_only=read_only,
                    transport=transport,
                )
            )
    return tuple(servers), problems


def _mcp_headers(where: str, headers: object, env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return {}, [f'{where}: "headers" must be an object of header name → text.']
    filled, problems = {}, []
    for header, value in headers.items():
        missing = [var for var in _ENV_REFERENCE.findall(value) if not env.get(var)]
        if missing:
            problems.append(
                f"{where} header {header} needs the environment variable {missing[0]}, which is not set: "
                f"set it (heroku config:set {missing[0]}=…) or remove it from MCP_SERVERS."
            )
            continue
        filled[header] = _ENV_REFERENCE.sub(lambda m: env[m.group(1)], value)
    return filled, problems


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict = {}

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def number(name: str, kind, minimum, attr: str | None = None):
        raw = text(name)
        if raw is None:
            return
        try:
            value = kind(raw)
        except ValueError:
            problems.append(f"{name} must be a number, got {raw!r}.")
            return
        if value < minimum:
            problems.append(f"{name} must be at least {minimum}, got {raw!r}.")
            return
        values[attr or name.lower()] = value

    raw_db = text("DATABASE_URL")
    if raw_db:
        try:
            values["database_url"] = normalize_database_url(raw_db)
        except ValueError as exc:
            problems.append(
                f"DATABASE_URL is malformed ({exc}): use postgres://USER:PASSWORD@HOST:PORT/DB "
                "(Heroku sets it when you add heroku-postgresql) or sqlite:///path/to/file.sqlite3."
            )

    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_ADMIN_USER_TOKEN",
        "INFERENCE_KEY",
        "MODERATION_REPORT_CHANNEL",
    ):
        if text(name):
            values[name.lower()] = text(name)

    if text("SLACK_BOT_TOKEN") and not text("SLACK_BOT_TOKEN").startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    if text("SLACK_APP_TOKEN") and not text("SLACK_APP_TOKEN").startswith("xapp-"):
        problems.append(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information → "
            "App-Level Tokens, scope connections:write)."
        )
    if bool(text("SLACK_CLIENT_ID")) != bool(text("SLACK_CLIENT_SECRET")):
        problems.append("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together: set both for OAuth, or neither.")

    for name, key in (("SLACK_API_URL", "slack_api_url"), ("INFERENCE_URL", "inference_url")):
        raw = text(name)
        if raw is None:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"{name} must be an http(s) URL, got {raw!r}.")
            continue
        if key == "slack_api_url" and not raw.endswith("/"):
            raw += "/"
        values[key] = raw.rstrip("/") if key == "inference_url" else raw

    if text("INFERENCE_MODEL_ID"):
        values["inference_model_id"] = text("INFERENCE_MODEL_ID")
    # Limits default to the model's published ones (bot.attachments.PUBLISHED_LIMITS).
    published = published_limits(values.get("inference_model_id", DEFAULT_MODEL))
    values["inference_max_requests_per_minute"], values["inference_max_tokens_per_minute"] = published
    extra, attachment_problems = discover(env)
    problems.extend(attachment_problems)
    values["extra_attachments"] = tuple(extra)
    attached = tuple(dict.fromkeys([values.get("inference_model_id", DEFAULT_MODEL), *(a.model_id for a in extra)]))
    for kind, variable in ROUTES.items():
        model = text(variable)
        if model is None:
            continue
        problem = route_problem(variable, model, attached)
        if problem:
            problems.append(problem)
        else:
            values[f"{kind}_model"] = model

    number("INFERENCE_MAX_REQUESTS_PER_MINUTE", int, 1)
    number("INFERENCE_MAX_TOKENS_PER_MINUTE", int, 1)
    number("INFERENCE_RATE_WINDOW_SECONDS", float, 0.1)
    number("INFERENCE_RATE_MARGIN_SECONDS", float, 0.0)
    number("INFERENCE_TIMEOUT_SECONDS", float, 1.0)
    number("INFERENCE_MAX_OUTPUT_TOKENS", int, 16)
    number("INFERENCE_MAX_REQUEST_BYTES", int, 1_000_000)
    number("JOB_LEASE_SECONDS", float, 1.0)
    number("JOB_MAX_ATTEMPTS", int, 1)
    number("WORKER_CONCURRENCY", int, 1)
    number("PORT", int, 1)
    number("DAILY_TOKEN_BUDGET_PER_USER", int, 1)
    number("DAILY_TOKEN_BUDGET_PER_TEAM", int, 1)
    number("RETENTION_DAYS", int, 0)
    number("WEB_CONCURRENCY", int, 1)
    number("DATABASE_CONNECTION_LIMIT", int, 1)
    number("BOT_APPROVAL_TIMEOUT_SECONDS", float, 1.0, "approval_timeout_seconds")
    number("BOT_MAX_QUEUED_PER_USER", int, 1, "max_queued_per_user")
    number("MCP_REFRESH_SECONDS", float, 1.0, "mcp_refresh_seconds")
    number("MCP_TIMEOUT_SECONDS", float, 1.0, "mcp_timeout_seconds")
    if text("MCP_SERVERS"):
        servers, mcp_problems = parse_mcp_servers(text("MCP_SERVERS"), env)
        values["mcp_servers"] = servers
        problems.extend(mcp_problems)
    if text("BOT_SYSTEM_PROMPT"):
        values["system_prompt"] = env["BOT_SYSTEM_PROMPT"]

    number("BOT_QUEUED_NOTICE_SECONDS", float, 0.0, "queued_notice_seconds")
    number("BOT_APOLOGY_AFTER_SECONDS", float, 0.0, "apology_after_seconds")
    number("BOT_MAX_TOOL_ROUNDS", int, 1, "max_tool_rounds")
    number("BOT_ANSWER_MAX_TOKENS", int, 16, "answer_max_tokens")
    number("BOT_ANSWER_CONTINUATIONS", int, 0, "answer_continuations")
    number("BOT_MAX_IMAGES_PER_REQUEST", int, 0, "max_images_per_request")
    number("BOT_MAX_FILE_BYTES", int, 1024, "max_file_bytes")
    number("BOT_IMAGE_DECODE_CONCURRENCY", int, 1, "image_decode_concurrency")
    number("BOT_CONTEXT_BUDGET_TOKENS", int, 1000, "context_budget_tokens")
    number("BOT_DOCUMENT_MAX_BYTES", int, 1024, "document_max_bytes")
    number("BOT_PDF_MAX_PAGES", int, 1, "pdf_max_pages")
    number("BOT_DOCUMENT_MAX_CHARS", int, 100, "document_max_chars")
    number("INFERENCE_THINKING_BUDGET_TOKENS", int, MIN_THINKING_BUDGET_TOKENS, "thinking_budget_tokens")
    problems.extend(output_limit_problems(values))
    problems.extend(retention_problems(values))
    for name, attr in (
        ("BOT_ANSWER_THREAD_FOLLOWUPS", "answer_thread_followups"),
        ("BOT_ANSWER_OTHER_BOTS", "answer_other_bots"),
        ("INFERENCE_EXTENDED_THINKING", "extended_thinking"),
        ("BOT_SHOW_REASONING", "show_reasoning"),
    ):
        raw = text(name)
        if raw is None:
            continue
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            problems.append(f"{name} must be true or false, got {raw!r}.")
            continue
        values[attr] = raw.lower() in ("true", "1", "yes", "on")
    for name, attr in (
        ("OPEN_METEO_GEOCODING_URL", "open_meteo_geocoding_url"),
        ("OPEN_METEO_FORECAST_URL", "open_meteo_forecast_url"),
    ):
        if text(name):
            values[attr] = text(name).rstrip("/")
    if text("BOT_TOOL_MODULES"):
        values["tool_modules"] = tuple(m.strip() for m in text("BOT_TOOL_MODULES").split(",") if m.strip())

    channels = text("MODERATION_CHANNELS")
    if channels:
        values["moderation_channels"] = tuple(c.strip() for c in channels.split(",") if c.strip())
    if text("MODERATION_POLICY"):
        try:
            parse_policy(text("MODERATION_POLICY"))
            values["moderation_policy"] = text("MODERATION_POLICY")
        except PolicyError as exc:
            problems.append(str(exc))
    if text("MODERATION_ALLOW_REACTION"):
        values["moderation_allow_reaction"] = text("MODERATION_ALLOW_REACTION").strip(":")
    level = (text("LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}.")
    values["log_level"] = level

    if problems:
        raise ConfigError(problems)
    return Settings(**values)
