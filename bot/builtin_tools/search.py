"""`search_messages` (`/search`): full-text search over the messages the bot has stored.

Postgres: `to_tsvector('simple', text)` against a prefix tsquery, ranked by `ts_rank`, served by
the GIN index `ix_thread_messages_text_search` (migration 0003). SQLite: `LIKE` per word.
Either way every word must appear ("deploy" finds "deploys"; Postgres by word prefix, SQLite
anywhere in a word). Who may see what: `bot.tools.search_logic`. Every query is scoped by team.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from slack_sdk.errors import SlackApiError
from sqlalchemy import and_, func, literal_column, not_, select
from sqlalchemy.orm import Session

from bot.history.models import ThreadMessage
from bot.tools.audience import private_results
from bot.tools.errors import ToolFailed
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.search_logic import (
    SearchHit,
    format_hits,
    like_pattern,
    permalink,
    prefix_tsquery,
    search_terms,
    searchable_channels,
)

MAX_RESULTS = 8
SEARCHED_ROLES = ("user", "assistant")
# A literal (not a bound parameter) so the expression matches the GIN index's text exactly.
SIMPLE = literal_column("'simple'")


def text_vector():
    return func.to_tsvector(SIMPLE, ThreadMessage.text)


def channels_of_user(session: Session, team_id: str, user_id: str) -> set[str]:
    """Channels and DMs of this workspace where `user_id` has a stored message."""
    return set(
        session.execute(
            select(ThreadMessage.channel_id)
            .where(ThreadMessage.team_id == team_id, ThreadMessage.user_id == user_id, ThreadMessage.role == "user")
            .distinct()
        ).scalars()
    )


def find_messages(
    session: Session,
    *,
    team_id: str,
    channels: Iterable[str],
    terms: Sequence[str],
    exclude_thread: tuple[str, str] | None = None,
    limit: int = MAX_RESULTS,
) -> list[SearchHit]:
    """Non-deleted user and assistant messages of `team_id` in `channels` containing every term."""
    channels = sorted(set(channels))
    if not channels or not terms:
        return []
    conditions = [
        ThreadMessage.team_id == team_id,
        ThreadMessage.channel_id.in_(channels),
        ThreadMessage.role.in_(SEARCHED_ROLES),
        ThreadMessage.deleted.is_(False),
        ThreadMessage.text != "",
    ]
    if exclude_thread is not None:
        channel, thread_ts = exclude_thread
        conditions.append(not_(and_(ThreadMessage.channel_id == channel, ThreadMessage.thread_ts == thread_ts)))
    columns = (
        ThreadMessage.channel_id,
        ThreadMessage.thread_ts,
        ThreadMessage.ts,
        ThreadMessage.user_id,
        ThreadMessage.role,
        ThreadMessage.text,
        ThreadMessage.created_at,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery(SIMPLE, prefix_tsquery(terms))
        statement = (
            select(*columns)
            .where(*conditions, text_vector().bool_op("@@")(query))
            .order_by(func.ts_rank(text_vector(), query).desc(), ThreadMessage.created_at.desc(), ThreadMessage.id)
        )
    else:
        matches = [ThreadMessage.text.ilike(like_pattern(term), escape="\\") for term in terms]
        statement = (
            select(*columns).where(*conditions, *matches).order_by(ThreadMessage.created_at.desc(), ThreadMessage.id)
        )
    rows = session.execute(statement.limit(limit)).all()
    return [SearchHit(*row) for row in rows]


@private_results
def search_messages(ctx: ToolContext, query: str) -> str:
    """Search the stored messages of this workspace's conversations with the assistant. Only
    channels and DMs the asker takes part in are searched. Answers up to 8 matching messages,
    each with its channel, date, author and a snippet.

    Args:
        query: The words to look for; every word must appear, e.g. "deploy friday".
    """
    if ctx.db is None or not ctx.team_id:
        raise ToolFailed("Search is not available here.")
    terms = search_terms(query)
    if not terms:
        raise ToolFailed("Give me at least one word to search for.")
    with ctx.db() as session:
        mine = channels_of_user(session, ctx.team_id, ctx.user_id) if ctx.user_id else set()
        channels = searchable_channels(ctx.channel_id, ctx.thread_ts, mine)
        # The model already sees the thread it works in; finding the question itself helps nobody.
        exclude = (ctx.channel_id, ctx.thread_ts) if ctx.channel_id and ctx.thread_ts else None
        hits = find_messages(session, team_id=ctx.team_id, channels=channels, terms=terms, exclude_thread=exclude)
    base = _workspace_url(ctx)
    return format_hits(
        query, hits, terms, (lambda hit: permalink(base, hit.channel_id, hit.ts, hit.thread_ts)) if base else None
    )


def _workspace_url(ctx: ToolContext) -> str | None:
    """The workspace's https URL (auth.test), for links to the messages found; None without one."""
    if ctx.slack is None:
        return None
    try:
        return str(ctx.slack.auth_test().get("url") or "") or None
    except SlackApiError:  # links are a nicety: a search without them is still an answer
        return None


def register(registry: ToolRegistry) -> None:
    registry.add(search_messages, command="search", usage="/search <words>", timeout=10.0)
