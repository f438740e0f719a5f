"""Benchmark of the gate: the same WebinarPage served ungated and gated. Not a test.

    python bench/gate.py                      # SQLite (a scratch file in /tmp)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/gate.py

With a PostgreSQL URL the database name is replaced by ``pw_bench_gate_<pid>`` (one
per run, so parallel runs do not collide), which this script creates and drops
itself. One process, Django's test client (the full
middleware stack, Wagtail's serve view and hooks):

* ``ungated``: the gate hook bypassed (``gate.serve_webinar`` replaced by a pass-through
  that shows the room), i.e. what serving the room costs without any check;
* ``gated``: a granted visitor (device cookie bound to a personal link; with
  ``--password`` also a room password pass) going through the real gate.

Device credential rotation is on (the default DEVICE_ROTATE_AFTER). A run is far
shorter than that interval, so without options no rotation falls in the measured
window; ``--rotate-every N`` ages the credential (outside the timed part) before
every N-th gated request, so that request rotates: one UPDATE and a new cookie.

Requests alternate one by one between the two, so drift (CPU frequency, load from
other processes) hits both alike. Prints JSON: requests/s of each (wall clock), their
ratio, the ratio of median latencies (robust to stalls) and the ratio of this
process's CPU time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_site")]

from scratch_db import drop_database, setup_database  # noqa: E402

BENCH_DB = f"pw_bench_gate_{os.getpid()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--password", action="store_true", help="room password too")
    parser.add_argument(
        "--rotate-every",
        type=int,
        default=0,
        metavar="N",
        help="force a credential rotation on every N-th gated request (0: none)",
    )
    args = parser.parse_args()

    backend, admin_url = setup_database(BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.setdefault("EXAMPLE_SITE_VAR_DIR", tempfile.mkdtemp(prefix="pwbench"))

    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)

    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from wagtail.models import Site
    from wagtail.rich_text import RichText

    from wagtail_paidwebinar import gate
    from wagtail_paidwebinar.models import (
        LinkDevice,
        PersonalLink,
        WebinarIndexPage,
        WebinarPage,
    )

    try:
        call_command("migrate", verbosity=0)
        root = Site.objects.get(is_default_site=True).root_page
        index = WebinarIndexPage(title="Webinars", slug="webinars")
        root.add_child(instance=index)
        from django.utils import timezone

        page = WebinarPage(
            title="Benchmark webinar",
            slug="bench",
            starts_at=timezone.now(),
            timezone="Europe/Warsaw",
            intro="<p>Teaser</p>",
            room=[("text", RichText("<p>The room.</p>"))],
            room_password="kawa123" if args.password else "",
            opens_minutes_before=60 * 24,
            closes_minutes_after=60 * 24,
        )
        index.add_child(instance=page)
        page.save_revision().publish()
        link = PersonalLink.objects.create(webinar=page, name="Anna Nowak")

        browser = Client(HTTP_USER_AGENT="bench")
        url = page.url
        claim = browser.post(f"{url}?access={link.token}", {"pw_action": "claim"})
        assert claim.status_code == 302
        if args.password:
            response = browser.post(
                url, {"pw_action": "password", "password": "kawa123"}
            )
            assert response.status_code == 302
        assert b"The room." in browser.get(url).content

        real = gate.serve_webinar

        def passthrough(page, request, callback, cb_args, cb_kwargs):
            request.paidwebinar_room = True
            return callback(page, request, cb_args, cb_kwargs)

        modes = {"ungated": passthrough, "gated": real}
        wall: dict[str, list[float]] = {m: [] for m in modes}
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        gated_count = {"n": 0, "rotations": 0}
        long_ago = timezone.now() - dt.timedelta(days=1)

        def one(mode: str) -> None:
            rotate = False
            if mode == "gated":
                gated_count["n"] += 1
                every = args.rotate_every
                rotate = bool(every) and gated_count["n"] % every == 0
                if rotate:  # untimed: make this request's credential due
                    LinkDevice.objects.update(rotated_at=long_ago)
            gate.serve_webinar = modes[mode]
            w0, c0 = time.perf_counter(), time.process_time()
            response = browser.get(url)
            w1, c1 = time.perf_counter(), time.process_time()
            if response.status_code != 200 or b"The room." not in response.content:
                raise SystemExit(f"{mode}: unexpected response {response.status_code}")
            if rotate:
                if "paidwebinar_device" not in response.cookies:
                    raise SystemExit("gated: the forced rotation did not happen")
                gated_count["rotations"] += 1
            wall[mode].append(w1 - w0)
            cpu[mode].append(c1 - c0)

        for _ in range(50):  # warm-up: templates, site root paths, connections
            one("ungated")
            one("gated")
        for series in (*wall.values(), *cpu.values()):
            series.clear()
        gated_count.update(n=0, rotations=0)
        # Requests alternate one by one (order flipped every other pair), so load
        # from other processes falls on both modes alike.
        for i in range(args.rounds * args.requests):
            order = ("ungated", "gated") if i % 2 else ("gated", "ungated")
            for mode in order:
                one(mode)
        gate.serve_webinar = real

        def rps(times: list[float]) -> float:
            return len(times) / sum(times)

        def median_rps(times: list[float]) -> float:
            return 1 / statistics.median(times)

        result = {
            "database": backend,
            "room_password": bool(args.password),
            "rotations_measured": gated_count["rotations"],
            "requests_per_mode": args.rounds * args.requests,
            "ungated_rps": round(rps(wall["ungated"]), 1),
            "gated_rps": round(rps(wall["gated"]), 1),
            "ratio": round(rps(wall["gated"]) / rps(wall["ungated"]), 3),
            # Robust to stalls caused by other processes: the median latency.
            "ratio_median_latency": round(
                median_rps(wall["gated"]) / median_rps(wall["ungated"]), 3
            ),
            # CPU time of this process only (excludes a PostgreSQL server's work).
            "ratio_cpu": round(rps(cpu["gated"]) / rps(cpu["ungated"]), 3),
            "target_ratio": 0.93,
        }
        print(json.dumps(result, indent=2))
    finally:
        connections.close_all()
        drop_database(BENCH_DB, admin_url)


if __name__ == "__main__":
    main()
