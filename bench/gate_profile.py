"""Where a room reload's time goes, against a teaser view. Not a test.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_x \\
    REDIS_URL=redis://127.0.0.1:6379/5 \\
        python bench/gate_profile.py [--visitors 300 --rounds 5 --profile 25]

The example site's settings (DEBUG off, the shared Redis cache, ``cached_db``
sessions) in one process, Django's test client, a scratch database (the name in
DATABASE_URL plus ``_gateprof``, created and dropped). ``--visitors`` browsers open
their personal links and confirm them; then, in alternating rounds, each reloads
the room once, and as many anonymous views of the teaser are made. Prints JSON:
microseconds per request of each (the median over the rounds), their ratio, and
with ``--profile N`` the N functions whose cumulative time differs most between a
room reload and a teaser view (cProfile, per request).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_site"), str(Path(__file__).parent)]

from gate_load import _NONCE_RE, ROOM_MARKER, TEASER_MARKER, make_webinar  # noqa: E402
from scratch_db import drop_database, setup_database  # noqa: E402


def per_function(profile: cProfile.Profile, requests: int) -> dict[str, float]:
    """Cumulative µs per request of each function."""
    stats = pstats.Stats(profile)
    out = {}
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        cumulative = row[3]
        where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        out[f"{where}:{line}({name})"] = cumulative / requests * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or not os.environ.get(
        "REDIS_URL"
    ):
        raise SystemExit("DATABASE_URL=postgres://… and REDIS_URL=redis://… are needed")
    name = urlsplit(url).path.lstrip("/") + "_gateprof"
    backend, admin_url = setup_database(name)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="testserver",
        EXAMPLE_SITE_VAR_DIR=tempfile.mkdtemp(prefix="pwgateprof"),
        DATABASE_CONN_MAX_AGE="60",
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.cache import caches
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from wagtail.models import Site

    from wagtail_paidwebinar.models import WebinarIndexPage

    try:
        call_command("migrate", verbosity=0)
        caches["default"].clear()
        root = Site.objects.get(is_default_site=True).root_page
        index = root.add_child(instance=WebinarIndexPage(title="Load", slug="load"))
        path, _page_id, tokens = make_webinar(index, 0, args.visitors)
        browsers = []
        for number, token in enumerate(tokens):
            browser = Client(HTTP_USER_AGENT=f"profile {number}")
            page = browser.get(path, {"access": token})
            nonce = _NONCE_RE.search(page.content).group(1).decode()
            claimed = browser.post(
                f"{path}?access={token}", {"pw_action": "claim", "pw_claim": nonce}
            )
            assert claimed.status_code == 302, claimed.status_code  # noqa: S101
            browsers.append(browser)
        anonymous = Client()

        def room() -> None:
            for browser in browsers:
                response = browser.get(path)
                assert ROOM_MARKER in response.content  # noqa: S101

        def teaser() -> None:
            for _ in browsers:
                anonymous.cookies.clear()
                response = anonymous.get(path)
                assert TEASER_MARKER in response.content  # noqa: S101
                assert ROOM_MARKER not in response.content  # noqa: S101

        room()
        teaser()  # warm
        timings: dict[str, list[float]] = {"room": [], "teaser": []}
        for number in range(args.rounds):
            order = (("room", room), ("teaser", teaser))
            for label, run in order if number % 2 == 0 else order[::-1]:
                began = time.perf_counter()
                run()
                timings[label].append(
                    (time.perf_counter() - began) / len(browsers) * 1e6
                )
        output: dict = {
            "visitors": len(browsers),
            "rounds": args.rounds,
            "us_per_request": {
                label: round(statistics.median(values))
                for label, values in timings.items()
            },
            "all_rounds_us": {
                label: [round(v) for v in values] for label, values in timings.items()
            },
        }
        output["room_over_teaser"] = round(
            output["us_per_request"]["room"] / output["us_per_request"]["teaser"], 3
        )
        if args.profile:
            profiles = {}
            for label, run in (("room", room), ("teaser", teaser)):
                profile = cProfile.Profile()
                profile.enable()
                run()
                profile.disable()
                profiles[label] = per_function(profile, len(browsers))
            keys = set(profiles["room"]) | set(profiles["teaser"])
            diff = sorted(
                (
                    (
                        profiles["room"].get(k, 0.0) - profiles["teaser"].get(k, 0.0),
                        k,
                    )
                    for k in keys
                ),
                reverse=True,
            )
            output["room_minus_teaser_cumulative_us"] = {
                k: round(v) for v, k in diff[: args.profile]
            }
        print(json.dumps(output, indent=2))
    finally:
        connections.close_all()
        drop_database(name, admin_url)


if __name__ == "__main__":
    main()
