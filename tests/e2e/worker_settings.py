"""Settings of the RQ worker the browser journeys start: the mailing tests' worker
settings, but links point at the live server (WAGTAIL_PAIDWEBINAR_BASE_URL from the
environment) so the link in a delivered e-mail opens in the test's browser."""

import os

from tests.mailing_worker_settings import *  # noqa: F403

WAGTAIL_PAIDWEBINAR_BASE_URL = os.environ["WAGTAIL_PAIDWEBINAR_BASE_URL"]
