"""Load test of the gate at the minute a webinar starts. Not a test.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_x \\
    REDIS_URL=redis://127.0.0.1:6379/5 python bench/gate_load.py --workers 1,2,4 \\
        [--links 2000 --arrival-seconds 60 --reload-minutes 5 --reload-every 30 \\
         --port 8061]

PostgreSQL only: the database named in DATABASE_URL gets the suffix ``_gateload``
(this script creates and drops it), and REDIS_URL is the example site's shared
cache (and queue). For every gunicorn worker count in ``--workers`` it starts
``gunicorn config.wsgi`` (example_site, DEBUG off) and, from this process (an
asyncio HTTP client, aiohttp; one cookie jar per visitor, as a browser has), runs
two scenarios with the same arrival schedule, one after the other:

* ``gated``: a new webinar with ``--links`` personal links (``generate_links``);
  each visitor arrives at a random moment within ``--arrival-seconds``, opens their
  link (``open``: the confirm page), posts the confirm form with its CSRF token and
  nonce as a browser does (``confirm``: the claim, a 302), loads the room
  (``room``), then reloads it every ``--reload-every`` seconds for
  ``--reload-minutes`` (``reload``; the device cookie rotates as in a browser);
* ``teaser``: the same number of anonymous visitors at the same moments, each
  making the same number of requests to the same page without a link (the public
  teaser).

Then a closed-loop ``saturation`` phase (``--saturate-seconds`` per mode, in
alternating slices so drift hits both alike): ``--concurrency`` clients reloading
the room with the gated visitors' cookies, or getting the teaser, as fast as the
server answers: the room's throughput against the teaser's.

Prints JSON: per worker count and scenario, each step's p50/p95/p99 latency (ms),
requests, errors (by kind) and late starts (a visitor's request started more than
1 s after its schedule: the client or a previous request was slow); the ratios the
issue sets targets for; the queries one request of each kind makes (Django's test
client in this process against the same database); and ``/proc/loadavg`` before
and after each phase (the machine may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_site")]

from scratch_db import drop_database, setup_database  # noqa: E402

ROOM_MARKER = b"The room of the load test."
TEASER_MARKER = b"Teaser of the load test."
STEPS_GATED = ("open", "confirm", "room", "reload")
STEPS_TEASER = ("open", "confirm", "room", "reload")  # same pattern, no link
_CSRF_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
_NONCE_RE = re.compile(rb'name="pw_claim" value="([^"]+)"')


def busy_seconds() -> tuple[float, float]:
    """CPU seconds spent so far by the whole machine (every core, /proc/stat) and
    by this process (the load generator): their difference is the server side's
    (gunicorn, PostgreSQL, Redis) plus whatever else runs on the machine."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = usage.ru_utime + usage.ru_stime
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:  # not Linux
        return 0.0, own
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values) - idle) / ticks, own


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # not Linux
        return ""


# --- statistics --------------------------------------------------------------------


@dataclass
class Step:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    late: int = 0

    def ok(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)

        return {
            "requests": len(lat) + sum(self.errors.values()),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
            "mean_ms": round(1000 * statistics.fmean(lat), 1) if lat else None,
            "late_starts": self.late,
        }


def percentile_all(steps: dict[str, Step], p: float) -> float | None:
    lat = sorted(x for step in steps.values() for x in step.latencies)
    if not lat:
        return None
    return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)


# --- one browser ------------------------------------------------------------------


class Browser:
    """A cookie jar and the requests of one visitor (aiohttp's own jar is off: the
    session is shared by every visitor, the cookies are not)."""

    def __init__(self, http, base: str, number: int) -> None:
        self.http = http
        self.base = base
        self.cookies: dict[str, str] = {}
        self.user_agent = f"gate-load/1 (visitor {number})"

    async def request(
        self, method: str, path: str, data: dict | None = None
    ) -> tuple[int, bytes, str, float]:
        headers = {"User-Agent": self.user_agent}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        start = time.perf_counter()
        async with self.http.request(
            method,
            self.base + path,
            data=data,
            headers=headers,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            elapsed = time.perf_counter() - start
            for name, morsel in response.cookies.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
            return response.status, body, response.headers.get("Location", ""), elapsed


async def _sleep_until(moment: float) -> bool:
    """Sleep until ``moment`` (loop time); True when already more than 1 s late."""
    loop = asyncio.get_running_loop()
    delay = moment - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
        return False
    return delay < -1


async def _timed(step: Step, coro, check) -> tuple | None:
    """Run one request; record its latency, or the error kind; the response when
    it passed ``check`` (a function of status, body, location giving an error kind
    or None)."""
    try:
        status, body, location, elapsed = await coro
    except TimeoutError:
        step.error("timeout")
        return None
    except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
        step.error(type(exc).__name__)
        return None
    problem = check(status, body, location)
    if problem:
        step.error(problem)
        return None
    step.ok(elapsed)
    return status, body, location


def _expect(status: int, marker: bytes | None = None, absent: bytes | None = None):
    def check(got: int, body: bytes, _location: str) -> str | None:
        if got != status:
            return f"status {got}"
        if marker is not None and marker not in body:
            return "content"
        if absent is not None and absent in body:
            return "room shown"
        return None

    return check


async def gated_visitor(
    browser: Browser,
    path: str,
    token: str,
    start: float,
    reload_times: list[float],
    steps: dict[str, Step],
    done: list[Browser],
) -> None:
    if await _sleep_until(start):
        steps["open"].late += 1
    got = await _timed(
        steps["open"],
        browser.request("GET", f"{path}?access={token}"),
        _expect(200, b'name="pw_claim"'),
    )
    if got is None:
        return
    body = got[1]
    csrf, nonce = _CSRF_RE.search(body), _NONCE_RE.search(body)
    if csrf is None or nonce is None:
        steps["confirm"].error("no form")
        return
    form = {
        "csrfmiddlewaretoken": csrf.group(1).decode(),
        "pw_action": "claim",
        "pw_claim": nonce.group(1).decode(),
    }

    def redirected(status: int, _body: bytes, location: str) -> str | None:
        if status != 302:
            return f"status {status}"
        return None if urlsplit(location).path == path else "redirect elsewhere"

    got = await _timed(
        steps["confirm"],
        browser.request("POST", f"{path}?access={token}", form),
        redirected,
    )
    if got is None:
        return
    got = await _timed(
        steps["room"], browser.request("GET", path), _expect(200, ROOM_MARKER)
    )
    if got is None:
        return
    done.append(browser)
    for moment in reload_times:
        if await _sleep_until(moment):
            steps["reload"].late += 1
        await _timed(
            steps["reload"], browser.request("GET", path), _expect(200, ROOM_MARKER)
        )


async def teaser_visitor(
    browser: Browser,
    path: str,
    start: float,
    reload_times: list[float],
    steps: dict[str, Step],
) -> None:
    check = _expect(200, TEASER_MARKER, absent=ROOM_MARKER)
    if await _sleep_until(start):
        steps["open"].late += 1
    for name in ("open", "confirm", "room"):
        await _timed(steps[name], browser.request("GET", path), check)
    for moment in reload_times:
        if await _sleep_until(moment):
            steps["reload"].late += 1
        await _timed(steps["reload"], browser.request("GET", path), check)


def _schedule(args, loop_now: float, seed: int) -> list[tuple[float, list[float]]]:
    rng = random.Random(seed)
    reloads = int(args.reload_minutes * 60 // args.reload_every)
    plan = []
    for _ in range(args.links):
        arrival = loop_now + 1 + rng.uniform(0, args.arrival_seconds)
        plan.append(
            (arrival, [arrival + k * args.reload_every for k in range(1, reloads + 1)])
        )
    return plan


def _new_http(limit: int):
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=True),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def run_scenario(args, base: str, kind: str, path: str, tokens: list[str]):
    steps = {name: Step() for name in STEPS_GATED}
    done: list[Browser] = []
    async with _new_http(args.connections) as http:
        plan = _schedule(args, asyncio.get_running_loop().time(), seed=14)
        tasks = []
        for number, (start, reloads) in enumerate(plan):
            browser = Browser(http, base, number)
            if kind == "gated":
                coro = gated_visitor(
                    browser, path, tokens[number], start, reloads, steps, done
                )
            else:
                coro = teaser_visitor(browser, path, start, reloads, steps)
            tasks.append(asyncio.ensure_future(coro))
        began = time.perf_counter()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - began
    return steps, done, wall


async def saturate(args, base: str, path: str, browsers: list[Browser]) -> dict:
    """Closed loop: room reloads (the gated visitors' jars, one request per jar
    at a time) against anonymous teaser views, alternating slices."""
    result = {
        m: {"requests": 0, "errors": 0, "seconds": 0.0, "cpu": 0.0, "client_cpu": 0.0}
        for m in ("room", "teaser")
    }
    if not browsers or args.saturate_seconds <= 0:
        return result
    jars: asyncio.Queue = asyncio.Queue()
    for browser in browsers:
        jars.put_nowait(browser)
    slice_seconds = min(5.0, args.saturate_seconds)
    slices = max(1, round(args.saturate_seconds / slice_seconds))
    async with _new_http(args.concurrency) as http:
        anonymous = Browser(http, base, -1)

        async def client(mode: str, until: float) -> None:
            room_check = _expect(200, ROOM_MARKER)
            teaser_check = _expect(200, TEASER_MARKER, absent=ROOM_MARKER)
            while time.perf_counter() < until:
                if mode == "room":
                    browser = await jars.get()
                    browser.http = http
                    try:
                        got = await browser.request("GET", path)
                    except Exception:  # noqa: BLE001
                        got = None
                    jars.put_nowait(browser)
                    check = room_check
                else:
                    try:
                        got = await anonymous.request("GET", path)
                    except Exception:  # noqa: BLE001
                        got = None
                    anonymous.cookies.clear()
                    check = teaser_check
                result[mode]["requests"] += 1
                if got is None or check(got[0], got[1], got[2]):
                    result[mode]["errors"] += 1

        for index in range(2 * slices):
            # room, teaser, teaser, room, room, teaser...
            order = ("room", "teaser") if index // 2 % 2 == 0 else ("teaser", "room")
            mode = order[index % 2]
            began = time.perf_counter()
            machine, own = busy_seconds()
            until = began + slice_seconds
            await asyncio.gather(
                *(client(mode, until) for _ in range(args.concurrency))
            )
            result[mode]["seconds"] += time.perf_counter() - began
            machine_after, own_after = busy_seconds()
            result[mode]["cpu"] += machine_after - machine - (own_after - own)
            result[mode]["client_cpu"] += own_after - own
    for figures in result.values():
        requests = max(1, figures["requests"])
        figures["rps"] = round(figures["requests"] / figures["seconds"], 1)
        figures["seconds"] = round(figures["seconds"], 1)
        # CPU per request on the server side (the machine's minus the load
        # generator's) and in the load generator.
        figures["server_cpu_ms_per_request"] = round(
            1000 * figures.pop("cpu") / requests, 2
        )
        figures["client_cpu_ms_per_request"] = round(
            1000 * figures.pop("client_cpu") / requests, 2
        )
    return result


# --- the site ------------------------------------------------------------------


def make_webinar(index, number: int, links: int):
    """A published webinar inside its access window, and ``links`` personal links
    made by the plugin's own bulk generation. Returns (path, tokens)."""
    from django.utils import timezone
    from wagtail.rich_text import RichText

    from wagtail_paidwebinar.actions import generate_links
    from wagtail_paidwebinar.models import PersonalLink, WebinarPage

    page = WebinarPage(
        title=f"Load test webinar {number}",
        slug=f"load-{number}",
        starts_at=timezone.now(),
        timezone="Europe/Warsaw",
        intro=f"<p>{TEASER_MARKER.decode()}</p>",
        room=[("text", RichText(f"<p>{ROOM_MARKER.decode()}</p>"))],
        opens_minutes_before=60 * 24,
        closes_minutes_after=60 * 24,
    )
    index.add_child(instance=page)
    page.save_revision().publish()
    text = "\n".join(
        f"Visitor {number}-{i} <visitor{i}.{number}@example.com>" for i in range(links)
    )
    result = generate_links(page, text)
    assert len(result.created) == links, result  # noqa: S101
    ordered = PersonalLink.objects.filter(webinar=page).order_by("pk")
    return page.url, page.pk, [link.token for link in ordered]


def count_queries(path: str, token: str) -> dict:
    """Queries of each step for one visitor, through Django's test client in this
    process (same settings, database and cache as the served site)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    browser, anonymous = Client(HTTP_USER_AGENT="queries"), Client()
    counts = {}

    def run(name, call):
        with CaptureQueriesContext(connection) as ctx:
            response = call()
        counts[name] = len(ctx.captured_queries)
        return response

    response = run("open", lambda: browser.get(path, {"access": token}))
    nonce = _NONCE_RE.search(response.content).group(1).decode()
    run(
        "confirm",
        lambda: browser.post(
            f"{path}?access={token}", {"pw_action": "claim", "pw_claim": nonce}
        ),
    )
    run("room", lambda: browser.get(path))
    run("reload", lambda: browser.get(path))
    run("teaser", lambda: anonymous.get(path))
    return counts


def free_port(port: int) -> None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"Port {port} is in use; pass --port")


def start_gunicorn(args, workers: int, env: dict) -> subprocess.Popen:
    free_port(args.port)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--chdir",
        str(ROOT / "example_site"),
        "--workers",
        str(workers),
        "--worker-class",
        args.worker_class,
        "--bind",
        f"127.0.0.1:{args.port}",
        "--backlog",
        "4096",
        "--timeout",
        "120",
        "--log-level",
        "warning",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", args.port)) == 0:
                return process
        if process.poll() is not None:
            raise SystemExit("gunicorn exited")
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def warm_up(base: str, path: str, workers: int) -> None:
    async with _new_http(8) as http:
        browser = Browser(http, base, -2)
        for _ in range(10 * workers):
            await browser.request("GET", path)


def ratios(gated: dict, teaser: dict, saturation: dict) -> dict:
    claim_p99 = gated["confirm"]["p99_ms"]
    teaser_p99 = teaser["all_p99_ms"]
    room, anon = saturation["room"].get("rps"), saturation["teaser"].get("rps")
    return {
        "claim_p99_over_teaser_p99": (
            round(claim_p99 / teaser_p99, 2) if claim_p99 and teaser_p99 else None
        ),
        "target_claim_p99_over_teaser_p99": "<= 4",
        "teaser_rps_over_room_rps": round(anon / room, 3) if room and anon else None,
        "target_teaser_rps_over_room_rps": "<= 1.1",
        # The same comparison in server CPU per request (what the gate costs the
        # site, without the load generator's share of the two cores).
        "room_over_teaser_server_cpu": (
            round(
                saturation["room"]["server_cpu_ms_per_request"]
                / saturation["teaser"]["server_cpu_ms_per_request"],
                3,
            )
            if saturation["teaser"].get("server_cpu_ms_per_request")
            else None
        ),
        "errors_gated": sum(s["errors"] for s in gated.values() if isinstance(s, dict)),
        "errors_teaser": sum(
            s["errors"] for s in teaser.values() if isinstance(s, dict)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=2000, help="visitors per run")
    parser.add_argument("--arrival-seconds", type=float, default=60)
    parser.add_argument("--reload-minutes", type=float, default=5)
    parser.add_argument("--reload-every", type=float, default=30, metavar="SECONDS")
    parser.add_argument(
        "--workers", default="1,2,4", help="gunicorn worker counts, e.g. 1,2,4"
    )
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="with gthread")
    parser.add_argument("--port", type=int, default=8061)
    parser.add_argument(
        "--connections", type=int, default=512, help="client connections at most"
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="the site's DATABASE_CONN_MAX_AGE (0: a connection per request)",
    )
    parser.add_argument("--saturate-seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16, help="saturation")
    parser.add_argument(
        "--only", choices=["gated", "teaser"], help="run one scenario only"
    )
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL=postgres://… is required (gunicorn workers)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL=redis://…/N is required (the shared cache)")
    name = urlsplit(url).path.lstrip("/") + "_gateload"
    backend, admin_url = setup_database(name)
    db_url = os.environ["DATABASE_URL"]
    var_dir = tempfile.mkdtemp(prefix="pwgateload")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        EXAMPLE_SITE_VAR_DIR=var_dir,
        WAGTAIL_PAIDWEBINAR_BASE_URL=f"http://127.0.0.1:{args.port}",
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.cache import caches
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone
    from wagtail.models import Site

    from wagtail_paidwebinar.models import LinkDevice, WebinarIndexPage

    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        DATABASE_CONN_MAX_AGE=str(args.conn_max_age),
        PYTHONUNBUFFERED="1",
    )
    base = f"http://127.0.0.1:{args.port}"
    output: dict = {
        "database": backend,
        "cache": settings.CACHES["default"]["BACKEND"],
        "sessions": settings.SESSION_ENGINE,
        "cpus": os.cpu_count(),
        "args": vars(args),
        "runs": [],
    }
    try:
        call_command("migrate", verbosity=0)
        caches["default"].clear()
        root = Site.objects.get(is_default_site=True).root_page
        index = root.add_child(instance=WebinarIndexPage(title="Load", slug="load"))
        for run_number, workers in enumerate(
            int(w) for w in args.workers.split(",") if w.strip()
        ):
            path, page_id, link_tokens = make_webinar(index, run_number, args.links + 1)
            queries = count_queries(path, link_tokens.pop())
            connections.close_all()
            server = start_gunicorn(args, workers, env)
            run: dict = {"workers": workers, "queries_per_request": queries}
            try:
                asyncio.run(warm_up(base, path, workers))
                done: list[Browser] = []
                for kind in ("teaser", "gated"):
                    if args.only and kind != args.only:
                        continue
                    before = loadavg()
                    steps, finished, wall = asyncio.run(
                        run_scenario(args, base, kind, path, link_tokens)
                    )
                    if kind == "gated":
                        done = finished
                    summary = {name: step.summary() for name, step in steps.items()}
                    summary["all_p99_ms"] = percentile_all(steps, 0.99)
                    summary["wall_seconds"] = round(wall, 1)
                    summary["loadavg_before"] = before
                    summary["loadavg_after"] = loadavg()
                    run[kind] = summary
                before = loadavg()
                began = timezone.now()
                run["saturation"] = asyncio.run(saturate(args, base, path, done))
                run["saturation"]["loadavg_before"] = before
                run["saturation"]["loadavg_after"] = loadavg()
                # Room reloads that rotated the device credential (one UPDATE and
                # commit each; due DEVICE_ROTATE_AFTER after a device's last one).
                run["saturation"]["room"]["rotations"] = LinkDevice.objects.filter(
                    link__webinar_id=page_id, rotated_at__gte=began
                ).count()
                connections.close_all()
                if "gated" in run and "teaser" in run:
                    run["ratios"] = ratios(
                        run["gated"], run["teaser"], run["saturation"]
                    )
            finally:
                stop_gunicorn(server)
            output["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
        print(json.dumps(output, indent=2))
    finally:
        connections.close_all()
        drop_database(name, admin_url)


if __name__ == "__main__":
    main()
