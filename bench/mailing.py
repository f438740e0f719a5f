"""Mailing throughput and memory; prints JSON.

    .venv/bin/python bench/mailing.py [--quick] [--workers N]

All figures are measured in one run against the same local SMTP sink (aiosmtpd in
its own process, discarding messages):

- floor_django: Django's SMTP backend sending N pre-built messages (the very messages
  our mailer produces: text + inlined HTML + .ics) over one connection;
- floor_raw: the same messages pre-serialised to bytes, smtplib.sendmail in a loop;
- ours: an N-recipient mailing end to end through real RQ worker(s) on real Redis and
  PostgreSQL: ledger insert, enqueue, claim, render, send, mark sent (timed from
  start_mailing() to the mailing being done);
- naive: render the template + premailer.transform per e-mail, then send;
- with --pipelining: ours again against a sink that offers SMTP PIPELINING;
- memory: peak RSS of a burst worker (and the work horses it forks) draining an
  M-recipient mailing.

Uses the PostgreSQL database pw_bench_mailing (created and dropped here) and Redis
db 5. Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_site")]

# BENCH_MAILING_DB / BENCH_REDIS_URL: another scratch database and Redis db, so
# two people on one machine can run it at once.
DB_NAME = os.environ.get("BENCH_MAILING_DB", "pw_bench_mailing")
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")

SINK_CODE = """
import asyncio, signal, sys
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if sys.argv[2:] == ["pipelining"]:
            responses.insert(-1, "250-PIPELINING")
        return responses

c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
"""


# A TCP proxy that holds every chunk for DELAY ms in each direction (in order):
# a network round trip of 2 x DELAY between the worker and the sink, where the
# kernel's netem is not available.
PROXY_CODE = """
import asyncio, sys
listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000

async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    while data := await reader.read(65536):
        queue.put_nowait((loop.time() + delay, data))
    queue.put_nowait((0, None))
    await task

async def handle(client_reader, client_writer):
    reader, writer = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "example_site")])
    return env


def start_sink(port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SINK_CODE, str(port), *extra],
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def setup_django(port: int, var_dir: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.mailing_settings",
        DATABASE_URL=f"{PG}/{DB_NAME}",
        REDIS_URL=REDIS_URL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_TIMEOUT="20",
        WAGTAIL_PAIDWEBINAR_BASE_URL="https://webinars.example.com",
        DJANGO_DEBUG="0",
        EXAMPLE_SITE_VAR_DIR=var_dir,
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_webinar():
    from wagtail.models import Site

    from tests.utils import make_index, make_webinar
    from wagtail_paidwebinar.models import MailingSettings

    ms = MailingSettings.for_site(Site.objects.get(is_default_site=True))
    ms.from_name = "Akademia Webinarów"
    ms.from_email = "webinars@example.com"
    ms.signature = "<p>Best regards,<br><b>The organisers</b></p>"
    ms.footer = "<p>Example Ltd · Warsaw · you bought a ticket</p>"
    ms.save()
    return make_webinar(make_index(), room_password="kawa123")


BODY = (
    "<h2>Welcome, {{ name }}!</h2><p>Thank you for buying a ticket to "
    "<b>{{ webinar }}</b>. We start on {{ starts_at }}.</p>"
    "<ul><li>Open your personal link a few minutes early.</li>"
    "<li>Keep the password at hand: {{ password }}.</li></ul>"
    '<p>Your link: <a href="{{ link }}">{{ link }}</a></p>'
)


def add_links(webinar, count: int, prefix: str):
    from wagtail_paidwebinar.models import PersonalLink

    PersonalLink.objects.bulk_create(
        [
            PersonalLink(
                webinar=webinar,
                name=f"Uczestnik Żółć {i:06d}",
                email=f"{prefix}{i:06d}@example.org",
                email_normalized=f"{prefix}{i:06d}@example.org",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def prebuilt_messages(webinar, n: int):
    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.mailing.message import build_message
    from wagtail_paidwebinar.mailing.render import build_template, personalise

    mailing = create_mailing(webinar, subject="Invitation, {{ name }}", body_html=BODY)
    template = build_template(mailing)
    messages = []
    for i in range(n):
        name = f"Uczestnik Żółć {i:06d}"
        link = f"https://webinars.example.com/webinars/x/?access={i}.abcdefghijklmnopqrstuvwx"
        rendered = personalise(template, name=name, link=link)
        messages.append(
            build_message(
                template,
                rendered,
                name=name,
                email=f"floor{i:06d}@example.org",
            )
        )
    return mailing, template, messages


def bench_floor(webinar, n: int) -> dict:
    from wagtail_paidwebinar.mailing.connection import new_connection

    _mailing, _template, messages = prebuilt_messages(webinar, n)
    connection = new_connection()
    connection.open()
    t0 = time.perf_counter()
    sent = connection.send_messages(messages)
    elapsed = time.perf_counter() - t0
    connection.close()
    assert sent == n, sent

    raw = [
        (m.from_email, m.recipients(), m.message().as_bytes(linesep="\r\n"))
        for m in messages
    ]
    smtp = smtplib.SMTP(os.environ["EMAIL_HOST"], int(os.environ["EMAIL_PORT"]))
    t0 = time.perf_counter()
    for from_email, rcpts, data in raw:
        smtp.sendmail(from_email, rcpts, data)
    raw_elapsed = time.perf_counter() - t0
    smtp.quit()
    size = sum(len(r[2]) for r in raw) / n
    return {
        "floor_django": {
            "messages": n,
            "seconds": round(elapsed, 3),
            "per_second": round(n / elapsed, 1),
        },
        "floor_raw_bytes": {
            "messages": n,
            "seconds": round(raw_elapsed, 3),
            "per_second": round(n / raw_elapsed, 1),
        },
        "message_bytes": round(size),
    }


def bench_naive(webinar, n: int) -> dict:
    """Render the template and run premailer for every e-mail, then send."""
    import logging

    import premailer
    from django.template.loader import render_to_string
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    from wagtail_paidwebinar.mailing import create_mailing, ics
    from wagtail_paidwebinar.mailing.connection import new_connection
    from wagtail_paidwebinar.mailing.message import build_message
    from wagtail_paidwebinar.mailing.render import (
        RenderedEmail,
        _merge,
        build_template,
        local_start,
    )
    from wagtail_paidwebinar.mailing.text import html_to_text

    mailing = create_mailing(webinar, subject="Invitation, {{ name }}", body_html=BODY)
    template = build_template(mailing)  # for sender and calendar only
    from wagtail.models import Site

    from wagtail_paidwebinar.models import MailingSettings

    ms = MailingSettings.for_site(Site.objects.get(is_default_site=True))
    starts_at = local_start(webinar)
    connection = new_connection()
    connection.open()
    t0 = time.perf_counter()
    for i in range(n):
        name = f"Uczestnik Żółć {i:06d}"
        link = f"https://webinars.example.com/webinars/x/?access={i}.abcdefghijklmnopqrstuvwx"
        values = {
            "name": escape(name),
            "link": escape(link),
            "password": "kawa123",
            "webinar": escape(webinar.title),
            "starts_at": escape(starts_at),
        }
        body = _merge(BODY, values)
        context = {
            "subject": f"Invitation, {name}",
            "webinar_title": webinar.title,
            "starts_at": starts_at,
            "link": link,
            "password": "kawa123",
            "unsubscribe": "",
        }
        html = render_to_string(
            "wagtail_paidwebinar/mailing/email.html",
            {
                **context,
                "body": mark_safe(body),  # noqa: S308 - bench input
                "signature": mark_safe(ms.signature),  # noqa: S308
                "footer": mark_safe(ms.footer),  # noqa: S308
            },
        )
        html = premailer.transform(
            html,
            allow_network=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        )
        text = render_to_string(
            "wagtail_paidwebinar/mailing/email.txt",
            {
                **context,
                "body": html_to_text(body),
                "signature": html_to_text(ms.signature),
                "footer": html_to_text(ms.footer),
            },
        )
        calendar = ics.personal_ics(template.ics, link=link, description=link)
        rendered = RenderedEmail(
            subject=context["subject"], html=html, text=text, ics=calendar
        )
        message = build_message(
            template,
            rendered,
            name=name,
            email=f"naive{i:06d}@example.org",
            connection=connection,
        )
        connection.send_messages([message])
    elapsed = time.perf_counter() - t0
    connection.close()
    return {
        "messages": n,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 1),
    }


def _baseline_wire(rev: str, module_name: str = "wire"):
    """``mailing/wire.py`` (or another module of mailing/) as it was at git
    revision ``rev`` (wire.py: the hand-laid MIME builder it had before the
    one-builder change), imported next to today's modules so both are timed in
    one process."""
    import importlib.util

    source = subprocess.run(
        ["git", "show", f"{rev}:wagtail_paidwebinar/mailing/{module_name}.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"wagtail_paidwebinar.mailing._baseline_{module_name}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "wagtail_paidwebinar.mailing"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:{module_name}.py", "exec"), module.__dict__)  # noqa: S102
    return module


def bench_build(
    webinar,
    n: int,
    baseline: str | None = None,
    rounds: int = 3,
    compose_at: str | None = None,
) -> dict:
    """Per-message cost of building one recipient's message, ready to send
    (personalise + build + serialise), in microseconds (best of ``rounds``):
    today's builder (message.compose, stdlib EmailMessage + policy.SMTP), Django's
    own EmailMultiAlternatives serialised as its SMTP backend does, and with
    ``baseline`` the hand-laid wire.py of that git revision."""
    from email.mime.text import MIMEText
    from email.utils import formataddr

    from django.core.mail import EmailMultiAlternatives

    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.mailing.message import Layout, compose
    from wagtail_paidwebinar.mailing.render import build_template, personalise

    mailing = create_mailing(webinar, subject="Invitation, {{ name }}", body_html=BODY)
    template = build_template(mailing)
    people = [
        (
            f"Uczestnik Żółć {i:06d}",
            f"build{i:06d}@example.org",
            f"https://webinars.example.com/webinars/x/?access={i}.abcdefghijklmnopqrstuvwx",
        )
        for i in range(n)
    ]
    layout = Layout(template)

    def ours():
        for name, email, link in people:
            rendered = personalise(template, name=name, link=link)
            invitation = compose(
                template, rendered, name=name, email=email, layout=layout
            )
            invitation.as_bytes()

    def django():
        for name, email, link in people:
            rendered = personalise(template, name=name, link=link)
            message = EmailMultiAlternatives(
                subject=rendered.subject,
                body=rendered.text,
                from_email=template.from_email,
                to=[formataddr((name, email))],
                reply_to=template.reply_to,
            )
            message.attach_alternative(rendered.html, "text/html")
            part = MIMEText(rendered.ics, "calendar", "utf-8")
            part.add_header("Content-Disposition", "attachment", filename="x.ics")
            message.attach(part)
            message.message().as_bytes(linesep="\r\n")

    builders = {"ours_compose": ours, "django_message": django}
    if compose_at:
        # message.py of that revision (e.g. before the bytes were written from the
        # layout): the same personalise, its compose and as_bytes.
        old = _baseline_wire(compose_at, "message")
        old_layout = old.Layout(template)

        def old_compose():
            for name, email, link in people:
                rendered = personalise(template, name=name, link=link)
                old.compose(
                    template, rendered, name=name, email=email, layout=old_layout
                ).as_bytes()

        builders[f"compose_at_{compose_at}"] = old_compose
    if baseline:
        wire = _baseline_wire(baseline).WireMessage(template)

        def hand_laid():
            for name, email, link in people:
                wire.envelope(name=name, email=email, link=link)

        builders[f"hand_laid_wire_at_{baseline}"] = hand_laid
    figures = {}
    for label, build in builders.items():
        best = float("inf")
        for _round in range(rounds):
            t0 = time.perf_counter()
            build()
            best = min(best, time.perf_counter() - t0)
        figures[f"{label}_us_per_message"] = round(best / n * 1e6)
    figures["messages"] = n
    figures["load"] = round(os.getloadavg()[0], 1)
    return figures


def start_workers(count: int) -> list[subprocess.Popen]:
    import django_rq
    from rq import Worker

    conn = django_rq.get_connection("default")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "rqworker", "default", "--with-scheduler"],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    deadline = time.monotonic() + 60
    while len(Worker.all(connection=conn)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_mailing(webinar, n: int, prefix: str, workers: int) -> dict:
    from tests.utils import make_webinar
    from wagtail_paidwebinar.mailing import create_mailing, start_mailing
    from wagtail_paidwebinar.models import Mailing, MailingStatus

    # A fresh webinar per run: deleting 10,000 links first would cost more than
    # the run.
    webinar = make_webinar(
        webinar.get_parent().specific, title=f"Bench {prefix}", room_password="kawa123"
    )
    add_links(webinar, n, prefix)
    mailing = create_mailing(webinar, subject="Invitation, {{ name }}", body_html=BODY)
    import resource

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = start_workers(workers)
    try:
        t0 = time.perf_counter()
        queued = start_mailing(mailing)
        t_started = time.perf_counter() - t0
        # Above START_IN_BACKGROUND_ABOVE the worker prepares the mailing (part
        # of the time measured here).
        assert queued == n or mailing.status == MailingStatus.PREPARING, queued
        while (
            Mailing.objects.values_list("status", flat=True).get(pk=mailing.pk)
            != MailingStatus.DONE
        ):
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        stop_workers(procs)
    # The workers and their work horses, once they have exited (and only they:
    # the sink and proxy still run).
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    progress = mailing.progress()
    assert progress["sent"] == n, progress
    return {
        "worker_cpu_ms_per_message": round(cpu / n * 1000, 2),
        "messages": n,
        "workers": workers,
        "seconds": round(elapsed, 3),
        "start_mailing_seconds": round(t_started, 3),
        "per_second": round(n / elapsed, 1),
    }


def start_proxy(target: int, delay_ms: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", PROXY_CODE, str(port), str(target), str(delay_ms)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout.readline().strip() == b"ready"
    return proc, port


def run_pipelining(webinar, n: int, rtt_ms: float = 0) -> dict:
    """ours, 1 worker, against a sink that does not offer PIPELINING (aiosmtpd's
    default) and one that does (as Postfix and the big relays do), one after the
    other so that both run under the same load; with ``rtt_ms``, each through a
    proxy adding that round-trip time."""
    figures = {}
    for label, extra in (("plain", ()), ("pipelining", ("pipelining",))):
        sink_port = free_port()
        procs = [start_sink(sink_port, *extra)]
        port = sink_port
        if rtt_ms:
            proxy, port = start_proxy(sink_port, rtt_ms / 2)
            procs.append(proxy)
        default_port = os.environ["EMAIL_PORT"]
        os.environ["EMAIL_PORT"] = str(port)  # the worker reads it when it starts
        try:
            figures[label] = run_mailing(webinar, n, f"{label}{round(rtt_ms)}", 1)
        finally:
            os.environ["EMAIL_PORT"] = default_port
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    return {
        "messages": n,
        "rtt_ms": rtt_ms,
        "plain_sink_per_second": figures["plain"]["per_second"],
        "pipelining_sink_per_second": figures["pipelining"]["per_second"],
        "ratio": round(
            figures["pipelining"]["per_second"] / figures["plain"]["per_second"], 3
        ),
    }


def run_rtt(webinar, rtt_ms: float, runs: list[tuple[int, int]]) -> dict:
    """ours, 1 worker, through a proxy adding ``rtt_ms`` of round trip to a sink
    that offers PIPELINING (as real relays do): one run per ``(connections,
    messages)``, one after the other under the same load."""
    figures = {}
    sink_port = free_port()
    sink = start_sink(sink_port, "pipelining")
    proxy, port = start_proxy(sink_port, rtt_ms / 2)
    default_port = os.environ["EMAIL_PORT"]
    os.environ["EMAIL_PORT"] = str(port)  # the worker reads it when it starts
    try:
        for connections, n in runs:
            os.environ["BENCH_SMTP_CONNECTIONS"] = str(connections)
            run = run_mailing(webinar, n, f"rtt{connections}x", 1)
            run["connections"] = connections
            run["load"] = round(os.getloadavg()[0], 1)
            figures[f"{connections}_connections"] = run
            print(json.dumps(run), file=sys.stderr, flush=True)
    finally:
        os.environ["EMAIL_PORT"] = default_port
        os.environ.pop("BENCH_SMTP_CONNECTIONS", None)
        for proc in (proxy, sink):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    summary: dict = {"rtt_ms": rtt_ms, **figures}
    single = figures.get("1_connections")
    for key, run in figures.items():
        # What 10,000 invitations take at this pace, and the pace against one
        # connection in this same run.
        run["seconds_per_10000"] = round(10_000 / run["per_second"], 1)
        if single is not None and run is not single:
            summary[f"ratio_{key}_to_1_connection"] = round(
                run["per_second"] / single["per_second"], 2
            )
    summary["targets"] = {
        f"{key}: 10,000 in under 90 s": run["seconds_per_10000"] < 90
        for key, run in figures.items()
        if key != "1_connections"
    }
    return summary


def run_commit_cost(webinar, n: int, connections: int) -> dict:
    """ours, 1 worker of ``connections`` connections on loopback: durable ledger
    commits (the default) against LEDGER_SYNCHRONOUS_COMMIT = False, one after
    the other under the same load."""
    figures = {}
    os.environ["BENCH_SMTP_CONNECTIONS"] = str(connections)
    try:
        for label, durable in (("durable", "1"), ("relaxed", "0"), ("durable2", "1")):
            os.environ["BENCH_LEDGER_SYNCHRONOUS_COMMIT"] = durable
            run = run_mailing(webinar, n, f"commit{label}", 1)
            run["load"] = round(os.getloadavg()[0], 1)
            figures[label] = run
            print(json.dumps({label: run}), file=sys.stderr, flush=True)
    finally:
        os.environ.pop("BENCH_SMTP_CONNECTIONS", None)
        os.environ.pop("BENCH_LEDGER_SYNCHRONOUS_COMMIT", None)
    return {"connections": connections, **figures}


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def bench_memory(webinar, n: int, max_jobs: int | None = None) -> dict:
    """Peak RSS (VmHWM, sampled from /proc) of a burst worker and of every work
    horse it forks while draining an n-recipient mailing."""
    from wagtail_paidwebinar.mailing import create_mailing, start_mailing
    from wagtail_paidwebinar.models import MailingStatus, PersonalLink

    PersonalLink.objects.filter(webinar=webinar).delete()
    add_links(webinar, n, "mem")
    mailing = create_mailing(webinar, subject="Invitation, {{ name }}", body_html=BODY)
    t0 = time.perf_counter()
    queued = start_mailing(mailing)
    start_seconds = time.perf_counter() - t0
    assert queued == n or mailing.status == MailingStatus.PREPARING, queued
    args = [sys.executable, "-m", "django", "rqworker", "default", "--burst"]
    if max_jobs:
        args += ["--max-jobs", str(max_jobs)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    worker_peak = horse_peak = 0
    horses: set[int] = set()
    while proc.poll() is None:
        worker_peak = max(worker_peak, _status_kb(proc.pid, "VmHWM"))
        for child in _children(proc.pid):
            horses.add(child)
            horse_peak = max(horse_peak, _status_kb(child, "VmHWM"))
        time.sleep(0.2)
    elapsed = time.perf_counter() - t0
    progress = mailing.progress()
    return {
        "messages": n,
        "max_jobs": max_jobs,
        "sent": progress["sent"],
        "start_mailing_seconds": round(start_seconds, 1),
        "worker_seconds": round(elapsed, 1),
        "per_second": round(progress["sent"] / elapsed, 1),
        "horses_seen": len(horses),
        "worker_peak_rss_mb": round(worker_peak / 1024, 1),
        "horse_peak_rss_mb": round(horse_peak / 1024, 1),
        "peak_rss_mb": round(max(worker_peak, horse_peak) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere")
    parser.add_argument("--workers", type=int, default=1, help="workers for 'ours'")
    parser.add_argument(
        "--extra-workers",
        type=int,
        default=0,
        help="also run ours with this many workers",
    )
    parser.add_argument(
        "--pipelining",
        action="store_true",
        help="also run ours against a sink that offers SMTP PIPELINING (RFC 2920)",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0,
        help="with --pipelining: also through a proxy adding this round-trip time",
    )
    parser.add_argument(
        "--build-cost",
        action="store_true",
        help="only time building one message (today's builder against Django's)",
    )
    parser.add_argument(
        "--build-baseline",
        default=None,
        help="with --build-cost: also time the hand-laid wire.py of this git rev",
    )
    parser.add_argument(
        "--build-compose-at",
        metavar="REV",
        help="with --build-cost: also time message.compose of this git rev",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="SMTP_CONNECTIONS of the workers in every run of 'ours'",
    )
    parser.add_argument(
        "--rtt-run",
        default="",
        help="with --rtt-ms: only runs of ours through the round trip, e.g. "
        "'1:1000,8:10000,16:10000' (connections:messages)",
    )
    parser.add_argument(
        "--commit-cost",
        action="store_true",
        help="only ours with durable against relaxed ledger commits (loopback)",
    )
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--only-memory", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds")
    parser.add_argument(
        "--memory-max-jobs",
        type=int,
        default=None,
        help="stop the memory worker after this many jobs (default: the whole mailing)",
    )
    args = parser.parse_args()
    n_floor, n_ours, n_naive, n_memory = (
        (500, 2000, 200, 10_000) if args.quick else (2000, 10_000, 500, 100_000)
    )

    port = free_port()
    sink = start_sink(port)
    recreate_database()
    var_dir = tempfile.mkdtemp(prefix="pw-bench-")
    results: dict = {}
    try:
        setup_django(port, var_dir)
        import django_rq

        django_rq.get_connection("default").flushdb()
        webinar = make_webinar()
        os.environ["BENCH_SMTP_CONNECTIONS"] = str(args.connections)
        results["connections"] = args.connections
        special = args.build_cost or args.rtt_run or args.commit_cost
        if args.build_cost:
            results["build"] = bench_build(
                webinar,
                1000,
                args.build_baseline,
                compose_at=args.build_compose_at,
            )
        if args.rtt_run:
            runs = [
                tuple(int(x) for x in item.split(":"))
                for item in args.rtt_run.split(",")
            ]
            results["rtt"] = run_rtt(webinar, args.rtt_ms or 20, runs)
        if args.commit_cost:
            results["commit_cost"] = run_commit_cost(webinar, n_ours, args.connections)
            os.environ["BENCH_SMTP_CONNECTIONS"] = str(args.connections)
        if not special and not args.only_memory and args.rounds > 0:
            # Rounds of floor / naive / ours / floor, so that each ratio compares
            # runs made under the same machine load.
            rounds = []
            for number in range(args.rounds):
                before = bench_floor(webinar, n_floor)
                naive = bench_naive(webinar, n_naive)
                ours = run_mailing(webinar, n_ours, f"ours{number}", args.workers)
                after = bench_floor(webinar, n_floor)
                floor = (
                    before["floor_django"]["per_second"]
                    + after["floor_django"]["per_second"]
                ) / 2
                rounds.append(
                    {
                        "floor_django_per_second": round(floor, 1),
                        "floor_raw_bytes_per_second": round(
                            (
                                before["floor_raw_bytes"]["per_second"]
                                + after["floor_raw_bytes"]["per_second"]
                            )
                            / 2,
                            1,
                        ),
                        "naive_per_second": naive["per_second"],
                        "ours_per_second": ours["per_second"],
                        "ours_start_mailing_seconds": ours["start_mailing_seconds"],
                        "ratio_ours_to_floor": round(ours["per_second"] / floor, 3),
                        "ratio_ours_to_naive": round(
                            ours["per_second"] / naive["per_second"], 2
                        ),
                        "load": round(os.getloadavg()[0], 1),
                    }
                )
                print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
            results["sizes"] = {
                "floor": n_floor,
                "naive": n_naive,
                "ours": n_ours,
                "message_bytes": before["message_bytes"],
            }
            results["rounds"] = rounds
            for key in ("ratio_ours_to_floor", "ratio_ours_to_naive"):
                results[f"median_{key}"] = statistics.median(r[key] for r in rounds)
            if args.extra_workers:
                results[f"ours_{args.extra_workers}_workers"] = run_mailing(
                    webinar, n_ours, "more", args.extra_workers
                )
            results["targets"] = {
                "ours_vs_floor >= 1.0": results["median_ratio_ours_to_floor"] >= 1.0,
                "ours_vs_naive >= 4": results["median_ratio_ours_to_naive"] >= 4,
            }
        if args.pipelining and not special:
            results["ours_pipelining_server"] = run_pipelining(webinar, n_ours)
            if args.rtt_ms:
                results["ours_pipelining_server_rtt"] = run_pipelining(
                    webinar, n_floor, args.rtt_ms
                )
        if not args.no_memory and not special:
            results["memory"] = bench_memory(webinar, n_memory, args.memory_max_jobs)
            results.setdefault("targets", {})["peak_rss < 200 MB"] = (
                results["memory"]["peak_rss_mb"] < 200
            )
        results["machine"] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(10)
        from django.db import connections

        connections.close_all()
        django_rq.get_connection("default").flushdb()
        recreate_database(drop_only=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
