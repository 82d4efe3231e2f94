"""Approvals of state-changing tool calls, in the database (the caller's session commits).

One row per call: (job, tool, arguments, occurrence), where `occurrence` counts identical calls
within one run of the job, so an approval covers exactly one call and an identical later call
asks again. Each row holds who asked, the card posted for it, the answer, and once the approved
call ran, when (`used_at`, set atomically before it runs) and its result: a retry of the job
gets that result back instead of running the call twice. The pure rules are in
bot.tools.approval_logic; jobs park and wake through bot.queue.parking.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.db.base import Base
from bot.db.clock import db_now
from bot.db.types import BigIntId, UTCDateTime
from bot.tools.approval_logic import APPROVED, DENIED, PENDING, ApprovalState, effective_status, may_decide


class ToolApproval(Base):
    __tablename__ = "tool_approvals"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))  # the asker: only they can answer
    tool: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text)  # canonical JSON (approval_logic.arguments_key)
    what: Mapped[str] = mapped_column(Text)  # the card's "what will happen"
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    card_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The n-th identical call of the job's run: an approval covers one call.
    occurrence: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # the approved call started
    result_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the call returned

    __table_args__ = (UniqueConstraint("job_id", "tool", "arguments", "occurrence"),)

    def state(self) -> ApprovalState:
        return ApprovalState(self.status, self.expires_at)


def find(session: Session, job_id: int, tool: str, arguments: str, occurrence: int = 1) -> ToolApproval | None:
    return session.execute(
        select(ToolApproval).where(
            ToolApproval.job_id == job_id,
            ToolApproval.tool == tool,
            ToolApproval.arguments == arguments,
            ToolApproval.occurrence == occurrence,
        )
    ).scalar_one_or_none()


def request(
    session: Session,
    *,
    team_id: str,
    job_id: int,
    channel_id: str,
    thread_ts: str,
    user_id: str,
    tool: str,
    arguments: str,
    what: str,
    timeout_seconds: float,
    occurrence: int = 1,
) -> ToolApproval:
    """The approval for this call (the `occurrence`-th identical one), created pending if new."""
    now = db_now(session)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(ToolApproval)
        .values(
            team_id=team_id,
            job_id=job_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            user_id=user_id,
            tool=tool,
            arguments=arguments,
            what=what,
            occurrence=occurrence,
            status=PENDING,
            requested_at=now,
            expires_at=now + timedelta(seconds=timeout_seconds),
        )
        .on_conflict_do_nothing(
            index_elements=[ToolApproval.job_id, ToolApproval.tool, ToolApproval.arguments, ToolApproval.occurrence]
        )
    )
    return find(session, job_id, tool, arguments, occurrence)  # type: ignore[return-value]


def answered(session: Session, approval_id: int) -> bool:
    """Whether the person answered already. Locks the row: called by the transaction that parks
    the job, it waits for a click being recorded, and a click waits for the parking (the click
    locks the row first too, in `decide`), so the click either finds the job parked and wakes
    it, or the parking sees the answer and queues the job at once. Nothing is lost between."""
    status = session.execute(
        select(ToolApproval.status).where(ToolApproval.id == approval_id).with_for_update()
    ).scalar_one_or_none()
    return status is not None and status != PENDING


def use(session: Session, approval_id: int) -> bool:
    """Mark the approved call as started; False if it was already (another run or an earlier
    attempt started it: it must not run twice)."""
    result = session.execute(
        update(ToolApproval)
        .where(ToolApproval.id == approval_id, ToolApproval.status == APPROVED, ToolApproval.used_at.is_(None))
        .values(used_at=db_now(session))
    )
    return result.rowcount == 1


def record_result(session: Session, approval_id: int, *, ok: bool, content: str) -> None:
    session.execute(update(ToolApproval).where(ToolApproval.id == approval_id).values(result_ok=ok, result=content))


def decide(
    session: Session, *, team_id: str, approval_id: int, clicker: str, approve: bool
) -> tuple[str, ToolApproval | None]:
    """A click on the card. Returns (outcome, approval): "decided", "not_asker", "settled"
    (answered or expired already) or "unknown". Scoped by workspace."""
    approval = session.execute(
        select(ToolApproval).where(ToolApproval.id == approval_id, ToolApproval.team_id == team_id).with_for_update()
    ).scalar_one_or_none()
    if approval is None:
        return "unknown", None
    if not may_decide(clicker=clicker, asker=approval.user_id):
        return "not_asker", approval
    now = db_now(session)
    if effective_status(approval.state(), now) != PENDING:
        return "settled", approval
    approval.status = APPROVED if approve else DENIED
    approval.decided_by, approval.decided_at = clicker, now
    return "decided", approval
