"""Enterprise Grid org-wide installs: which workspaces belong to which org.

An org-wide install (`is_enterprise_install`) stores one bot row with the `enterprise_id` and
no `team_id`, yet events and jobs come per workspace. The web learns the pairing from each
authorized event (Bolt's context carries `team_id`, `enterprise_id`, `is_enterprise_install`)
and records it once; the worker finds a workspace's token through it (bot.slack.oauth). So an
org install answers in every workspace of the org, and a workspace never gets another org's
token: the pairing is only written from events Slack signed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Engine, String, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.db.base import Base
from bot.db.clock import db_now
from bot.db.types import UTCDateTime

log = logging.getLogger(__name__)


class OrgWorkspace(Base):
    __tablename__ = "org_workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(32), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


def remember_org_workspace(session: Session, *, team_id: str, enterprise_id: str) -> None:
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(OrgWorkspace)
        .values(team_id=team_id, enterprise_id=enterprise_id, seen_at=db_now(session))
        .on_conflict_do_update(index_elements=[OrgWorkspace.team_id], set_={"enterprise_id": enterprise_id})
    )


def enterprise_of(session: Session, team_id: str) -> str | None:
    return session.execute(select(OrgWorkspace.enterprise_id).where(OrgWorkspace.team_id == team_id)).scalar()


def teams_of(session: Session, enterprise_id: str) -> list[str]:
    return list(
        session.execute(select(OrgWorkspace.team_id).where(OrgWorkspace.enterprise_id == enterprise_id)).scalars()
    )


class OrgWorkspaceRecorder:
    """A Bolt middleware: records (team, enterprise) of org-wide installs, once per process."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, context, next) -> None:
        team_id, enterprise_id = context.team_id, context.enterprise_id
        if context.is_enterprise_install and team_id and enterprise_id:
            pair = (team_id, enterprise_id)
            with self._lock:
                new = pair not in self._seen
            if new:
                try:
                    with Session(self.engine) as session, session.begin():
                        remember_org_workspace(session, team_id=team_id, enterprise_id=enterprise_id)
                    with self._lock:
                        self._seen.add(pair)
                except SQLAlchemyError as exc:  # the event still goes on; the next one tries again
                    log.warning("org_workspace not_recorded error=%s", type(exc).__name__)
        next()
