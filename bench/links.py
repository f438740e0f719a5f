"""Benchmark of personal links: bulk generation and token verification. Not a test.

    python bench/links.py                     # SQLite (a scratch file in /tmp)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/links.py

With a PostgreSQL URL the database name is replaced by ``pw_bench_links``, which this
script creates and drops itself (never touching other databases). Prints JSON:
seconds to generate 10,000 (median and best of 3) and 100,000 links from a paste
(parse + validate + insert, one transaction) and token verifications per second
(CPU only, and with the one primary-key query the gate makes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_site")]

from scratch_db import drop_database, setup_database  # noqa: E402

BENCH_DB = "pw_bench_links"


def paste(count: int, prefix: str) -> str:
    # Polish names, half with e-mails: a realistic mix for the parser.
    lines = []
    for i in range(count):
        if i % 2:
            lines.append(f"Zażółć Gęślą {prefix}{i} <uczestnik.{prefix}{i}@example.pl>")
        else:
            lines.append(f"Łucja Żak {prefix}{i}")
    return "\n".join(lines)


def main() -> dict:
    backend, pg_url = setup_database(BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        from tests.utils import make_index, make_webinar
        from wagtail_paidwebinar import tokens
        from wagtail_paidwebinar.actions import generate_links
        from wagtail_paidwebinar.models import PersonalLink

        index = make_index()
        figures: dict = {"backend": backend}
        if backend == "sqlite":
            import sqlite3

            figures["sqlite_version"] = sqlite3.sqlite_version
        # Warm up (first queries, content types for the audit log, regexes).
        generate_links(make_webinar(index, title="Warm-up"), paste(200, "w-"))
        for count, runs in ((10_000, 3), (100_000, 1)):
            timings, cpu = [], []
            for run in range(runs):
                webinar = make_webinar(index, title=f"Bench {count} {run}")
                text = paste(count, f"b{count}-{run}-")
                start, cpu_start = time.perf_counter(), time.process_time()
                result = generate_links(webinar, text)
                timings.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
                assert len(result.created) == count and result.ok, (
                    len(result.created),
                    result.errors[:3],
                )
                assert all(link.pk for link in result.created)
            timings.sort()
            # This process's CPU time (parse, validate, build, send): less sensitive
            # to other load on the machine than wall time.
            figures[f"generate_{count}_python_cpu_seconds"] = round(min(cpu), 3)
            figures[f"generate_{count}_seconds"] = round(timings[len(timings) // 2], 3)
            if runs > 1:
                figures[f"generate_{count}_seconds_best"] = round(timings[0], 3)

        # Verification: parse + constant-time HMAC compare (CPU part of the gate).
        links = list(PersonalLink.objects.order_by("pk")[:20_000])
        toks = [link.token for link in links]
        start = time.perf_counter()
        for link, tok in zip(links, toks, strict=True):
            link_id, mac = tokens.parse_token(tok)
            assert tokens.verify_mac(link_id, link.webinar_id, link.salt, mac)
        elapsed = time.perf_counter() - start
        figures["verify_cpu_per_second"] = round(len(toks) / elapsed)

        # With the one primary-key query a request makes.
        sample = toks[:5_000]
        start = time.perf_counter()
        for tok in sample:
            link_id, mac = tokens.parse_token(tok)
            row = (
                PersonalLink.objects.filter(pk=link_id)
                .values_list("webinar_id", "salt")
                .first()
            )
            assert row and tokens.verify_mac(link_id, row[0], row[1], mac)
        elapsed = time.perf_counter() - start
        figures["verify_with_query_per_second"] = round(len(sample) / elapsed)
        figures["load_average_1min"] = round(os.getloadavg()[0], 2)
        figures["cpus"] = os.cpu_count()
        return figures
    finally:
        connection.close()
        drop_database(BENCH_DB, pg_url)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
