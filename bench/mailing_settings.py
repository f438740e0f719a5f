"""Settings of the mailing benchmark's processes: the example site's, plus the
knobs bench/mailing.py varies between runs (through the environment, so the
worker processes it starts see them too)."""

import os

from config.settings import *  # noqa: F403

WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = int(
    os.environ.get("BENCH_SMTP_CONNECTIONS", "8")
)
WAGTAIL_PAIDWEBINAR_LEDGER_SYNCHRONOUS_COMMIT = (
    os.environ.get("BENCH_LEDGER_SYNCHRONOUS_COMMIT", "1") == "1"
)
