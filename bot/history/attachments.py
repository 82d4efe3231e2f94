"""Attachments of a thread's messages, made ready for the model once and stored.

Each image file is downloaded (with the bot token, only to Slack's hosts), validated and
scaled once; each document (a PDF, a text or source file, see bot.documents) is downloaded
the same way and its text read once; the result, or the reason it could not be used, is
stored with the message (and the message's token estimate updated), so rebuilding the thread
later never downloads again. Other files stay as metadata and reach the model as a short
note (name, type, size).

Only what a reply can send is prepared: the newest images up to the per-request image cap,
and the newest documents while their text fits the budget (bot.documents.plan).

Each file is read once, whoever asks: a reply claims the (message, file) before reading it
(`attachment_reads`) and looks again, once the claim is held, for an outcome stored meanwhile;
another reply that needs the same file meanwhile waits for the stored outcome instead of reading
it again; the outcome has a unique (message, file) row. A claim
older than CLAIM_STALE_SECONDS (its reader died) is taken over. PDFs are read in a sandboxed
child process (bot.documents.reader): a document that costs too much to read is stored as
such ("too costly to read (stopped after N pages)") and never read again.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bot.db.clock import db_now
from bot.documents.extract import DEFAULT_LIMITS, Extracted, Limits
from bot.documents.kinds import kind_from_content, kind_from_metadata
from bot.documents.plan import Candidate, plan_preparation
from bot.documents.reader import DocumentReader
from bot.history.models import AttachmentRead, MessageImage, ThreadMessage
from bot.history.store import refresh_tokens
from bot.images.download import DownloadError, describe_download_problem, download_slack_file
from bot.images.files import needs_file_info
from bot.images.processing import ImageRejected, prepare_image
from bot.limits.tokens import estimate_text_tokens

log = logging.getLogger(__name__)

# A claim this old belongs to a reader that died (a download takes at most ~30 s and a document's
# sandbox 25 s): another reply takes it over. Waiting for someone else's read is polled this often.
CLAIM_STALE_SECONDS = 90.0
CLAIM_POLL_SECONDS = 0.25
MINE, DONE = "mine", "done"


def claim(session: Session, message_id: int, file_id: str, token: str) -> bool:
    """Claim reading this file (new, or a stale claim taken over); False if someone else holds it."""
    now = db_now(session)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(AttachmentRead).values(message_id=message_id, file_id=file_id, token=token, claimed_at=now)
    holder = session.execute(
        statement.on_conflict_do_update(
            index_elements=[AttachmentRead.message_id, AttachmentRead.file_id],
            set_={"token": token, "claimed_at": now},
            where=AttachmentRead.claimed_at < now - timedelta(seconds=CLAIM_STALE_SECONDS),
        ).returning(AttachmentRead.token)
    ).scalar_one_or_none()
    return holder == token


def is_stored(session: Session, message_id: int, file_id: str) -> bool:
    return session.execute(
        select(exists().where(MessageImage.message_id == message_id, MessageImage.file_id == file_id))
    ).scalar_one()


def is_image(meta: dict) -> bool:
    return str(meta.get("mimetype", "")).startswith("image/")


class AttachmentResolver:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        api_url: str,
        max_file_bytes: int,
        http: httpx.Client,
        document_max_bytes: int | None = None,
        document_limits: Limits = DEFAULT_LIMITS,
        documents: DocumentReader,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        self.sessions = sessions
        self.api_url = api_url
        self.max_file_bytes = max_file_bytes
        self.document_max_bytes = document_max_bytes or max_file_bytes
        self.document_limits = document_limits
        self.documents = documents
        self.http = http
        self.clock, self.sleep = clock, sleep

    def __call__(
        self,
        client: WebClient,
        team_id: str,
        rows: list[ThreadMessage],
        *,
        max_images: int | None = None,
        budget_tokens: int | None = None,
    ) -> list[str]:
        """Prepare what fits of `rows`' files (all of them without limits). Returns one line
        per document that could not be read, newly found, to tell the person."""
        pending = [(row, meta) for row in rows if not row.deleted for meta in row.files or [] if meta.get("id")]
        if not pending:
            return []
        with self.sessions() as session:
            done = {
                (a.message_id, a.file_id): a
                for a in session.execute(
                    select(
                        MessageImage.message_id,
                        MessageImage.file_id,
                        MessageImage.problem,
                        MessageImage.text,
                        MessageImage.width,
                    ).where(MessageImage.message_id.in_([row.id for row, _ in pending]))
                ).all()
            }
        order = {row.id: position for position, row in enumerate(rows)}
        newest_first = sorted(enumerate(pending), key=lambda item: (order[item[1][0].id], item[0]), reverse=True)
        candidates = []
        for _, (row, meta) in newest_first:
            prepared = done.get((row.id, meta["id"]))
            kind = kind_from_metadata(meta) if meta.get("mimetype") or meta.get("filetype") else "image"
            usable = bool(prepared and prepared.problem is None and (prepared.text is not None or prepared.width))
            tokens = estimate_text_tokens(prepared.text) if prepared and prepared.text else 0
            candidates.append(
                Candidate((row.id, meta["id"]), kind, int(meta.get("size") or 0), prepared is not None, usable, tokens)
            )
        chosen = set(
            plan_preparation(
                candidates,
                max_images=10**9 if max_images is None else max_images,
                budget_tokens=10**12 if budget_tokens is None else budget_tokens,
                max_chars=self.document_limits.max_chars,
            )
        )
        told = []
        for _, (row, meta) in newest_first:
            if (row.id, meta["id"]) not in chosen or (prepared := done.get((row.id, meta["id"]))) is not None:
                continue
            token = uuid.uuid4().hex
            if self._claim_or_wait(row.id, meta["id"], token) == DONE:
                continue  # another reply read it meanwhile: its outcome is stored
            if needs_file_info(meta):
                meta = self._file_info(client, meta) or meta
            kind = kind_from_metadata(meta)
            if kind == "image":
                self._store(row.id, meta["id"], token, *self._prepare(client, meta))
            elif kind in ("pdf", "text", "sniff"):
                extracted = self._read_document(client, meta, kind)
                self._store_document(row.id, meta["id"], token, extracted)
                if extracted.text is None and extracted.note:
                    told.append(extracted.note)
            else:
                self._release(row.id, meta["id"], token)
        return told

    def _claim_or_wait(self, message_id: int, file_id: str, token: str) -> str:
        """MINE: read it now; DONE: its outcome is stored (by whoever held the claim)."""
        deadline = self.clock() + CLAIM_STALE_SECONDS + 5
        while True:
            with self.sessions.begin() as session:
                if is_stored(session, message_id, file_id):
                    return DONE
                if claim(session, message_id, file_id, token):
                    # Looked again now that the claim is held: the holder may have stored its outcome
                    # and let go between the look above and the claim (on PostgreSQL each statement
                    # sees what was committed when it began; SQLite's BEGIN IMMEDIATE serializes).
                    if not is_stored(session, message_id, file_id):
                        return MINE
                    _drop_claim(session, message_id, file_id, token)
                    return DONE
            if self.clock() >= deadline:
                return DONE  # still held: leave the file unprepared this time rather than wait on
            self.sleep(CLAIM_POLL_SECONDS)  # another reply is reading it: wait for its outcome

    def _release(self, message_id: int, file_id: str, token: str) -> None:
        with self.sessions.begin() as session:
            _drop_claim(session, message_id, file_id, token)

    def _read_document(self, client: WebClient, meta: dict, kind: str) -> Extracted:
        name = str(meta.get("name") or meta.get("title") or meta.get("id"))
        url = meta.get("url_private_download") or meta.get("url_private")
        if not url:
            return Extracted(None, f"{name} could not be read: Slack gave no download link")
        try:
            data = download_slack_file(
                url, token=client.token or "", api_url=self.api_url, http=self.http, max_bytes=self.document_max_bytes
            )
        except DownloadError as exc:
            log.info("document unusable file=%s reason=%s", meta.get("id"), type(exc).__name__)
            return Extracted(None, f"{name} could not be read: {exc.message}")
        if kind == "sniff":
            kind = kind_from_content(data)
            if kind == "other":
                return Extracted(None, f"{name} is not a text file or PDF, so it was not read")
        return self.documents.read(kind, data, name)

    def _store_document(self, message_id: int, file_id: str, token: str, extracted: Extracted) -> None:
        with self.sessions.begin() as session:
            _store_once(
                session,
                token,
                message_id=message_id,
                file_id=file_id,
                text=extracted.text,
                problem=None if extracted.text is not None else (extracted.note or "could not be read"),
            )

    def _file_info(self, client: WebClient, meta: dict) -> dict | None:
        try:
            return client.files_info(file=meta["id"])["file"]
        except SlackApiError as error:
            log.warning("files.info failed error=%s", error.response.get("error"))
            return None

    def _prepare(self, client: WebClient, meta: dict):
        url = meta.get("url_private_download") or meta.get("url_private")
        if not url:
            return None, "the image could not be read: Slack gave no download link."
        try:
            data = download_slack_file(
                url, token=client.token or "", api_url=self.api_url, http=self.http, max_bytes=self.max_file_bytes
            )
            return prepare_image(data), None
        except (DownloadError, ImageRejected) as exc:
            log.info("attachment unusable file=%s reason=%s", meta.get("id"), type(exc).__name__)
            return None, describe_download_problem(exc)

    def _store(self, message_id: int, file_id: str, token: str, image, problem: str | None) -> None:
        with self.sessions.begin() as session:
            _store_once(
                session,
                token,
                message_id=message_id,
                file_id=file_id,
                media_type=image.media_type if image else None,
                data=image.data if image else None,
                width=image.width if image else None,
                height=image.height if image else None,
                problem=problem,
            )


def _drop_claim(session: Session, message_id: int, file_id: str, token: str) -> None:
    session.execute(
        delete(AttachmentRead).where(
            AttachmentRead.message_id == message_id, AttachmentRead.file_id == file_id, AttachmentRead.token == token
        )
    )


def _store_once(session: Session, token: str, **values) -> None:
    """The outcome, stored once per (message, file) whoever else got there, and the claim let go."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(MessageImage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[MessageImage.message_id, MessageImage.file_id])
    )
    _drop_claim(session, values["message_id"], values["file_id"], token)
    refresh_tokens(session, [values["message_id"]])
