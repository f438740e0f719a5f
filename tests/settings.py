"""Test settings: the example site's, with fast hashing and in-memory mail.

DATABASE_URL / REDIS_URL switch to PostgreSQL and real Redis exactly as for the demo.
"""

import os

os.environ.setdefault(
    "EXAMPLE_SITE_VAR_DIR", os.path.join(os.path.dirname(__file__), ".var")
)

from config.mail import mail_settings  # noqa: E402
from config.settings import *  # noqa: E402,F403

if not os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    }

# Tests keep a per-process cache and database sessions even with REDIS_URL (the
# example site's shared cache would carry throttle counters from test to test);
# tests that need a shared cache say so (tests/throttle_redis_settings.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
# In-memory mail: MAILERS on Django 6.1+, EMAIL_BACKEND before (config/mail.py).
globals().update(mail_settings("django.core.mail.backends.locmem.EmailBackend"))
DEBUG = False
ALLOWED_HOSTS = ["*"]
WAGTAIL_PAIDWEBINAR_BASE_URL = "https://webinars.example.com"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
