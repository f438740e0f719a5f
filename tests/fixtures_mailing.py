"""Fixtures of the mailing engine: a real SMTP server (aiosmtpd), an inline queue,
and a real RQ worker subprocess on real Redis + PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from tests.utils import embedded_queue_config, use_mailer
from wagtail_paidwebinar.models import PersonalLink

ROOT = Path(__file__).resolve().parent.parent
INLINE_QUEUE = "paidwebinar-inline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SinkHandler:
    """Stores every message; ``codes[address]`` makes RCPT answer with that reply.
    With ``pipelining`` the server offers PIPELINING (RFC 2920) and counts the MAIL
    commands that arrived with the RCPT TO already behind them, and the messages
    whose end of data arrived with the next message's MAIL FROM behind it."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.codes: dict[str, str] = {}
        self.lock = threading.Lock()
        self.pipelining = False
        self.mail_commands = 0
        self.pipelined_mail_commands = 0
        self.data_followed_by_mail = 0
        self.greetings = 0  # EHLOs: one per connection

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.greetings += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What the client sent after MAIL and before reading its reply is already
        # in the server's read buffer.
        unread = bytes(getattr(server._reader, "_buffer", b""))
        with self.lock:
            self.mail_commands += 1
            self.pipelined_mail_commands += b"RCPT TO:" in unread
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.codes.get(address.lower())
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        unread = bytes(getattr(server._reader, "_buffer", b""))
        with self.lock:
            self.data_followed_by_mail += unread.startswith(b"MAIL FROM:")
            self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that can be stopped and started on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        with self.handler.lock:
            raw = [content for _rcpt, content in self.handler.messages]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]

    def by_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.handler.lock:
            for rcpts, _content in self.handler.messages:
                for rcpt in rcpts:
                    counts[rcpt.lower()] = counts.get(rcpt.lower(), 0) + 1
        return counts


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server):
    """Django's SMTP backend pointed at the aiosmtpd server."""
    use_mailer(
        settings,
        "django.core.mail.backends.smtp.EmailBackend",
        host="127.0.0.1",
        port=smtp_server.port,
        use_tls=False,
        use_ssl=False,
        username="",
        password="",
        timeout=5,
    )
    return settings


@pytest.fixture
def inline_queue(settings):
    """The embedded default queue (fakeredis, ASYNC False) under its own name, so the
    inline path is tested even when REDIS_URL points the site's queues at Redis."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[INLINE_QUEUE] = embedded_queue_config()
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = INLINE_QUEUE
    yield INLINE_QUEUE
    rq_settings.QUEUES.pop(INLINE_QUEUE, None)


def make_link_holders(webinar, count: int, *, domain="example.org", names=None):
    """``count`` personal links with e-mails (bulk, for big mailings)."""
    links = [
        PersonalLink(
            webinar=webinar,
            name=(names[i] if names else f"Participant {i:05d}"),
            email=f"p{i:05d}@{domain}",
            email_normalized=f"p{i:05d}@{domain}",
        )
        for i in range(count)
    ]
    PersonalLink.objects.bulk_create(links, batch_size=1000)
    return list(PersonalLink.objects.filter(webinar=webinar).order_by("pk"))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found[::-1]


class Worker:
    """``manage.py rqworker`` as a subprocess (own session, so a SIGKILL of the
    group also kills the work horse it forked) on the test database."""

    def __init__(self, smtp_port: int, env: dict[str, str]) -> None:
        self.smtp_port = smtp_port
        self.extra_env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "tests" / ".var" / f"rqworker-{os.getpid()}.log"

    def env(self) -> dict[str, str]:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="tests.mailing_worker_settings",
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'example_site'}",
            DATABASE_URL=(
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}/{db['NAME']}"
            ),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.smtp_port),
            EMAIL_TIMEOUT="5",
            WAGTAIL_PAIDWEBINAR_BASE_URL="https://webinars.example.com",
            EXAMPLE_SITE_VAR_DIR=str(ROOT / "tests" / ".var"),
        )
        env.update(self.extra_env)
        return env

    def start(self, *, burst: bool = False) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "django",
            "rqworker",
            "default",
            "--with-scheduler",
        ]
        if burst:
            args.append("--burst")
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the worker and its work horse (a crash). RQ's horse calls
        setsid(), so it is found through /proc rather than the process group."""
        if self.proc is not None:
            for pid in [*descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            try:
                # Two SIGTERMs: RQ's cold shutdown (stops the horse too).
                os.kill(self.proc.pid, signal.SIGTERM)
                time.sleep(0.2)
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
            self.proc = None

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        return self.proc.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


@pytest.fixture
def real_queue(transactional_db):
    """Real Redis and PostgreSQL, shared with a worker subprocess; an empty Redis db."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs a real Redis: set REDIS_URL=redis://127.0.0.1:6379/3")
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (the worker process must see the test database): "
            "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_mailing"
        )
    import django_rq

    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def rq_worker(real_queue, smtp_server):
    """Factory of worker subprocesses; every one is stopped at teardown."""
    workers: list[Worker] = []

    def start(*, burst: bool = False, **env: str) -> Worker:
        worker = Worker(smtp_server.port, {k: str(v) for k, v in env.items()})
        worker.start(burst=burst)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float = 60, interval: float = 0.1, message=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")
