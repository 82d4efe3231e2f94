"""Attachments of a thread's messages, made ready for the model once and stored.

Each image file is downloaded (with the bot token, only to Slack's hosts), validated and
scaled once; the result, or the reason it could not be used, is stored with the message, so
rebuilding the thread later never downloads again. Other files stay as metadata and reach
the model as a short note (name, type, size).
"""

from __future__ import annotations

import logging

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.history.models import MessageImage, ThreadMessage
from bot.images.download import DownloadError, describe_download_problem, download_slack_file
from bot.images.files import needs_file_info
from bot.images.processing import ImageRejected, prepare_image

log = logging.getLogger(__name__)


def is_image(meta: dict) -> bool:
    return str(meta.get("mimetype", "")).startswith("image/")


class AttachmentResolver:
    def __init__(self, sessions: sessionmaker[Session], *, api_url: str, max_file_bytes: int, http: httpx.Client):
        self.sessions = sessions
        self.api_url = api_url
        self.max_file_bytes = max_file_bytes
        self.http = http

    def __call__(self, client: WebClient, team_id: str, rows: list[ThreadMessage]) -> None:
        pending = [(row, meta) for row in rows if not row.deleted for meta in row.files or [] if meta.get("id")]
        if not pending:
            return
        with self.sessions() as session:
            done = set(
                session.execute(
                    select(MessageImage.message_id, MessageImage.file_id).where(
                        MessageImage.message_id.in_([row.id for row, _ in pending])
                    )
                ).all()
            )
        for row, meta in pending:
            if (row.id, meta["id"]) in done:
                continue
            if needs_file_info(meta):
                meta = self._file_info(client, meta) or meta
            if not is_image(meta):
                continue
            self._store(row.id, meta["id"], *self._prepare(client, meta))

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
