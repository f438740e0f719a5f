"""Settings of the RQ worker subprocess started by the mailing tests: the example
site's (DATABASE_URL, REDIS_URL and EMAIL_HOST from the environment) plus the
mailing knobs a test sets through PW_* variables."""

import json
import os

from config.settings import *  # noqa: F403

WAGTAIL_PAIDWEBINAR_BASE_URL = "https://webinars.example.com"
WAGTAIL_PAIDWEBINAR_RETRY_DELAYS = json.loads(
    os.environ.get("PW_RETRY_DELAYS", "[1, 1, 2]")
)
WAGTAIL_PAIDWEBINAR_SEND_DELAY = float(os.environ.get("PW_SEND_DELAY", "0"))
WAGTAIL_PAIDWEBINAR_BATCH_SIZE = int(os.environ.get("PW_BATCH_SIZE", "50"))
WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = int(os.environ.get("PW_SMTP_CONNECTIONS", "8"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_paidwebinar": {"handlers": ["console"], "level": "INFO"}},
}
