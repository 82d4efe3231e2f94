"""Attachments of a thread's messages, made ready for the model once and stored.

Each image file is downloaded (with the bot token, only to Slack's hosts), validated and
scaled once; each document (a PDF, a text or source file, see bot.documents) is downloaded
the same way and its text read once; the result, or the reason it could not be used, is
stored with the message (and the message's token estimate updated), so rebuilding the thread
later never downloads again. Other files stay as metadata and reach the model as a short
note (name, type, size).

Only what a reply can send is prepared: the newest images up to the per-request image cap,
and the newest documents while their text fits the budget (bot.documents.plan).
"""

from __future__ import annotations

import logging

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.documents.extract import DEFAULT_LIMITS, Extracted, Limits, extract
from bot.documents.kinds import kind_from_content, kind_from_metadata
from bot.documents.plan import Candidate, plan_preparation
from bot.history.models import MessageImage, ThreadMessage
from bot.history.store import refresh_tokens
from bot.images.download import DownloadError, describe_download_problem, download_slack_file
from bot.images.files import needs_file_info
from bot.images.processing import ImageRejected, prepare_image
from bot.limits.tokens import estimate_text_tokens

log = logging.getLogger(__name__)


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
    ):
        self.sessions = sessions
        self.api_url = api_url
        self.max_file_bytes = max_file_bytes
        self.document_max_bytes = document_max_bytes or max_file_bytes
        self.document_limits = document_limits
        self.http = http

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
            if (row.id, meta["id"]) not in chosen:
                continue
            if needs_file_info(meta):
                meta = self._file_info(client, meta) or meta
            kind = kind_from_metadata(meta)
            if kind == "image":
                self._store(row.id, meta["id"], *self._prepare(client, meta))
            elif kind in ("pdf", "text", "sniff"):
                extracted = self._read_document(client, meta, kind)
                self._store_document(row.id, meta["id"], extracted)
                if extracted.text is None and extracted.note:
                    told.append(extracted.note)
        return told

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
        return extract(kind, data, name, self.document_limits)

    def _store_document(self, message_id: int, file_id: str, extracted: Extracted) -> None:
        with self.sessions.begin() as session:
            session.add(
                MessageImage(
                    message_id=message_id,
                    file_id=file_id,
                    text=extracted.text,
                    problem=None if extracted.text is not None else (extracted.note or "could not be read"),
                )
            )
            session.flush()
            refresh_tokens(session, [message_id])

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

    def _store(self, message_id: int, file_id: str, image, problem: str | None) -> None:
        with self.sessions.begin() as session:
            session.add(
                MessageImage(
                    message_id=message_id,
                    file_id=file_id,
                    media_type=image.media_type if image else None,
                    data=image.data if image else None,
                    width=image.width if image else None,
                    height=image.height if image else None,
                    problem=problem,
                )
            )
            session.flush()
            refresh_tokens(session, [message_id])
