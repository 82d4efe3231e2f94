"""`bot chat`: each line becomes a message in a local thread (team "local", channel
"terminal"), stored like a Slack message and answered by a `reply` job through the queue, an
in-process worker, the limiter and the tools. Only INFERENCE_URL and INFERENCE_KEY are needed.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.stops import request_stop
from bot.builtin_tools import configured_registry
from bot.channel_settings import store
from bot.channel_settings.command import HELP, HELP_TEXT, SHOW, parse_command, render_done, render_settings
from bot.channel_settings.command_job import change_setting, choices_for
from bot.channel_settings.models import WORKSPACE
from bot.channel_settings.names import BadValue
from bot.channel_settings.reader import defaults_of, resolved_in
from bot.chat.line import ChatLine, parse_line
from bot.chat.terminal import LOCAL_CHANNEL, LOCAL_TEAM, LOCAL_USER, TS, TerminalClient, TerminalSlack, new_file_id
from bot.config import Settings
from bot.conversation.reply_job import REPLY, ReplyPayload
from bot.history import store as history
from bot.history.models import MessageImage, Thread, ThreadMessage
from bot.images.processing import ImageRejected, prepare_image, sniff_media_type

log = logging.getLogger(__name__)


class ChatSession:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings, out: TextIO, *, resume: bool):
        self.sessions = sessions
        self.settings = settings
        self.out = out
        self.thread_ts = self._latest_thread() if resume else None
        self._finished: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def finished(self, job_id: int) -> None:
        with self._lock:
            event = self._finished.setdefault(job_id, threading.Event())
        event.set()

    def _latest_thread(self) -> str | None:
        with self.sessions() as session:
            return session.execute(
                select(Thread.thread_ts)
                .where(Thread.team_id == LOCAL_TEAM, Thread.channel_id == LOCAL_CHANNEL)
                .order_by(Thread.last_activity_at.desc())
                .limit(1)
            ).scalar_one_or_none()

    def ask(self, line: ChatLine, stopping: threading.Event) -> None:
        """Store the message (and its images), enqueue the reply, wait until it is answered."""
        images = [self._read_image(path) for path in line.image_paths]
        ts = TS.next()
        thread_ts = self.thread_ts or ts
        with self.sessions.begin() as session:
            history.engage_thread(session, LOCAL_TEAM, LOCAL_CHANNEL, thread_ts, mid_thread=False)
            history.upsert_message(
                session,
                team_id=LOCAL_TEAM,
                channel_id=LOCAL_CHANNEL,
                thread_ts=thread_ts,
                ts=ts,
                user_id=LOCAL_USER,
                text=line.text,
                files=[meta for meta, _, _ in images],
            )
            message_id = session.execute(
                select(ThreadMessage.id).where(
                    ThreadMessage.team_id == LOCAL_TEAM,
                    ThreadMessage.channel_id == LOCAL_CHANNEL,
                    ThreadMessage.ts == ts,
                    ThreadMessage.seq == 0,
                )
            ).scalar_one()
            for meta, image, problem in images:
                session.add(
                    MessageImage(
                        message_id=message_id,
                        file_id=meta["id"],
                        media_type=image.media_type if image else None,
                        data=image.data if image else None,
                        width=image.width if image else None,
                        height=image.height if image else None,
                        problem=problem,
                    )
                )
            session.flush()
            history.refresh_tokens(session, [message_id])  # its images count in the stored estimate
            history.touch_thread(session, LOCAL_TEAM, LOCAL_CHANNEL, thread_ts)
            job_id = REPLY.enqueue(
                session,
                ReplyPayload(channel=LOCAL_CHANNEL, thread_ts=thread_ts, ts=ts, user=LOCAL_USER, channel_type="im"),
                team_id=LOCAL_TEAM,
                user_id=LOCAL_USER,
                settings=self.settings,
            )
        self.thread_ts = thread_ts
        with self._lock:
            event = self._finished.setdefault(job_id, threading.Event())
        try:
            self._wait(event, stopping)
        except KeyboardInterrupt:  # Ctrl-C stops the answer, not the program (a second one does)
            self.stop_answer(thread_ts)
            self._wait(event, stopping)

    @staticmethod
    def _wait(event: threading.Event, stopping: threading.Event) -> None:
        while not event.wait(0.5):
            if stopping.is_set():
                return

    def settings_command(self, text: str) -> str:
        """`/settings …` in the terminal: it is a direct message, so the local workspace's defaults
        are what apply and what changes (the person at the terminal runs the bot: an admin)."""
        try:
            request = parse_command(text)
        except BadValue as exc:
            return str(exc)
        if request.kind == HELP:
            return HELP_TEXT
        if request.kind == SHOW:
            with self.sessions() as session:
                resolved = resolved_in(session, LOCAL_TEAM, None, defaults_of(self.settings))
                last = store.last_change(session, LOCAL_TEAM, WORKSPACE)
            return render_settings(
                resolved, title="Settings (workspace defaults)", last_change=last, workspace_view=True
            )
        try:
            with self.sessions.begin() as session:
                change = change_setting(
                    session,
                    team_id=LOCAL_TEAM,
                    place=WORKSPACE,
                    name=request.name,
                    raw=request.raw,
                    choices=choices_for(configured_registry(self.settings), self.settings, self.sessions),
                    user_id=LOCAL_USER,
                )
        except BadValue as exc:
            return str(exc)
        return render_done(change, place="the terminal")

    def stop_answer(self, thread_ts: str) -> None:
        """What Slack's Stop button does, for the terminal's thread (bot.agent.stops)."""
        with self.sessions.begin() as session:
            request_stop(session, team_id=LOCAL_TEAM, channel_id=LOCAL_CHANNEL, thread_ts=thread_ts, user_id=LOCAL_USER)

    def _read_image(self, path: str):
        """(file metadata, prepared image or None, problem or None); problems are also shown."""
        name = os.path.basename(path)
        meta = {"id": new_file_id(), "name": name}
        try:
            with open(os.path.expanduser(path), "rb") as file:
                data = file.read(self.settings.max_file_bytes + 1)
        except OSError as error:
            return self._image_problem(meta, f"the file could not be read ({error.strerror or error})")
        meta["size"] = len(data)
        meta["mimetype"] = sniff_media_type(data[:64]) or "image/unknown"
        if len(data) > self.settings.max_file_bytes:
            return self._image_problem(meta, "the file is too large")
        try:
            image = prepare_image(data)
        except ImageRejected as rejected:
            return self._image_problem(meta, str(rejected))
        return meta, image, None

    def _image_problem(self, meta: dict, problem: str):
        self.out.write(f"(image {meta['name']}: {problem})\n")
        meta.setdefault("mimetype", "image/unknown")
        return meta, None, problem


def run_chat(settings: Settings, stdin: TextIO, stdout: TextIO, *, resume: bool = False) -> int:
    from bot.runtime import build_worker

    terminal = TerminalClient(stdout)
    runtime = build_worker(settings, slack=TerminalSlack(terminal))
    chat = ChatSession(runtime.sessions, settings, stdout, resume=resume)
    runtime.worker.on_settled = lambda job: chat.finished(job.id)  # done or dead: the chat loop goes on
    worker_thread = threading.Thread(target=runtime.run, name="chat-worker", daemon=True)
    worker_thread.start()
    interactive = stdin.isatty()
    if interactive:
        stdout.write(
            "Talking to the model (/image PATH to attach a picture, /new for a new conversation, "
            "/settings to see or change its settings, /exit).\n"
        )
    try:
        while not runtime.worker.stopping.is_set():
            if interactive:
                stdout.write("you> ")
                stdout.flush()
            raw = stdin.readline()
            if not raw:
                break
            line = parse_line(raw)
            if line.kind == "exit":
                break
            if line.kind == "new":
                chat.thread_ts = None
                stdout.write("(new conversation)\n")
            elif line.kind == "error":
                stdout.write(f"({line.text})\n")
            elif line.kind == "settings":
                stdout.write(chat.settings_command(line.text) + "\n")
            elif line.kind == "message":
                chat.ask(line, runtime.worker.stopping)
    except KeyboardInterrupt:
        stdout.write("\n")
    finally:
        runtime.worker.stop()
        worker_thread.join(timeout=30)
    return 0
