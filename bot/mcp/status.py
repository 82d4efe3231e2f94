"""Which MCP servers are up, as the workers last found them (for /healthz and `bot check`).

One row per server name: its status, the sentence when it is not up, and its offered tools
(function name, and whether a call needs approval). Every process that refreshes writes what
it found; the web process only reads. Header values are never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.db.base import Base
from bot.db.clock import db_now
from bot.db.types import JsonDocument, UTCDateTime
from bot.mcp.state import UP, ServerState


class McpServerStatus(Base):
    __tablename__ = "mcp_server_status"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    tools: Mapped[list] = mapped_column(JsonDocument, default=list)  # [{"name", "needs_approval"}]
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


def record(session: Session, states: Iterable[ServerState]) -> None:
    """Upsert each server's state (the caller's session commits)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = db_now(session)
    for state in states:
        values = {
            "name": state.name,
            "status": state.status,
            "detail": state.detail,
            "tools": [{"name": tool.name, "needs_approval": tool.needs_approval} for tool in state.tools],
            "checked_at": now,
        }
        statement = insert(McpServerStatus).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[McpServerStatus.name],
                set_={key: statement.excluded[key] for key in values if key != "name"},
            )
        )


def recorder(sessions: sessionmaker[Session]):
    """An `on_refresh` for the catalog: each refresh is written in its own transaction."""

    def write(states: list[ServerState]) -> None:
        with sessions.begin() as session:
            record(session, states)

    return write


def summary(session: Session, names: Sequence[str]) -> dict:
    """{"servers": configured, "down": found not up, "unchecked": not found yet} for /healthz."""
    rows = {
        row.name: row.status
        for row in session.execute(select(McpServerStatus).where(McpServerStatus.name.in_(list(names)))).scalars()
    }
    return {
        "servers": len(names),
        "down": sum(1 for name in names if name in rows and rows[name] != UP),
        "unchecked": sum(1 for name in names if name not in rows),
    }


def recorded_views(sessions: sessionmaker[Session]):
    """A `recorded` for the catalog: {name: (status, function names)} as last recorded."""

    def read() -> dict[str, tuple[str, frozenset[str]]]:
        with sessions() as session:
            rows = session.execute(select(McpServerStatus)).scalars().all()
            return {row.name: (row.status, frozenset(tool["name"] for tool in row.tools or [])) for row in rows}

    return read
