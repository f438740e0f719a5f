"""Settings of the example site.

With no environment at all it runs on SQLite, prints e-mail to the console and runs
jobs in-process (fakeredis), so `make demo` needs no services. DATABASE_URL, REDIS_URL
and EMAIL_HOST switch to PostgreSQL, a real Redis queue and SMTP.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .mail import mail_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_SITE_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "example-site-only-insecure-key-change-me-0123456789"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "home",
    "search",
    "wagtail_paidwebinar",
    "wagtail_modeladmin",
    "django_rq",
    "wagtail.contrib.settings",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.sitemaps",
    "wagtail.api.v2",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "rest_framework",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"


def database_from_url(url: str) -> dict:
    """A DATABASES entry from postgres://user:pw@host:port/name or sqlite:///path."""
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # Seconds a web process keeps its connection between requests (0: a
            # new connection per request, Django's default). bench/gate_load.py
            # runs the site with 60; see docs/load.md.
            "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
            "CONN_HEALTH_CHECKS": True,
        }
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path[1:] or ":memory:",
        }
    raise ValueError(f"Unsupported DATABASE_URL scheme: {parts.scheme!r}")


DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django 6.1 checks it for the search fields of Wagtail's PostgreSQL index
        # (postgres.E005), so `check` and rqworker would refuse to start without it.
        INSTALLED_APPS.append("django.contrib.postgres")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pl", "Polski")]
TIME_ZONE = "Europe/Warsaw"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

WAGTAIL_SITE_NAME = "Webinars by Example"
WAGTAILADMIN_BASE_URL = os.environ.get(
    "WAGTAIL_PAIDWEBINAR_BASE_URL", "http://127.0.0.1:8000"
)
WAGTAIL_I18N_ENABLED = False
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_SERVE_METHOD = "serve_view"

# --- wagtail_paidwebinar ---------------------------------------------------------
WAGTAIL_PAIDWEBINAR_BASE_URL = os.environ.get(
    "WAGTAIL_PAIDWEBINAR_BASE_URL", "http://127.0.0.1:8000"
)
WAGTAIL_PAIDWEBINAR_QUEUE = os.environ.get("WAGTAIL_PAIDWEBINAR_QUEUE", "default")
# Payment webhooks (README "Payments"): off unless a secret is given.
WAGTAIL_PAIDWEBINAR_PURCHASE_WEBHOOK_SECRET = os.environ.get(
    "WAGTAIL_PAIDWEBINAR_PURCHASE_WEBHOOK_SECRET", ""
)
WAGTAIL_PAIDWEBINAR_STRIPE_WEBHOOK_SECRET = os.environ.get(
    "WAGTAIL_PAIDWEBINAR_STRIPE_WEBHOOK_SECRET", ""
)

# --- queue -----------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    _queue = {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}
else:
    # Embedded default: an in-process fake Redis and synchronous jobs.
    import fakeredis
    import redis

    _queue = {
        "HOST": "fake",
        "PORT": 0,
        "DB": 0,
        "ASYNC": False,
        "REDIS_CLIENT_KWARGS": {
            "connection_pool": redis.ConnectionPool(
                connection_class=fakeredis.FakeRedisConnection,
                server=fakeredis.FakeServer(),
            )
        },
    }
RQ_QUEUES = {WAGTAIL_PAIDWEBINAR_QUEUE: _queue}
if REDIS_URL:
    # One cache for every process of the site: the gate's throttle counters
    # (WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE) must be shared, or each gunicorn worker
    # counts alone (check --deploy: wagtail_paidwebinar.W002). Sessions read from
    # it too (written through to the database), so a visitor reloading the room
    # costs no session query.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "example_site",
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
if WAGTAIL_PAIDWEBINAR_QUEUE != "default":
    RQ_QUEUES["default"] = _queue
RQ = {"COMMIT_MODE": "on_db_commit"}

# --- e-mail ----------------------------------------------------------------------
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", "Webinars <webinars@example.com>"
)
# MAILERS on Django 6.1+, EMAIL_* before (config/mail.py).
if os.environ.get("EMAIL_HOST"):
    globals().update(
        mail_settings(
            "django.core.mail.backends.smtp.EmailBackend",
            host=os.environ["EMAIL_HOST"],
            port=int(os.environ.get("EMAIL_PORT", "25")),
            username=os.environ.get("EMAIL_HOST_USER", ""),
            password=os.environ.get("EMAIL_HOST_PASSWORD", ""),
            use_tls=os.environ.get("EMAIL_USE_TLS", "") == "1",
            use_ssl=os.environ.get("EMAIL_USE_SSL", "") == "1",
            timeout=int(os.environ.get("EMAIL_TIMEOUT", "20")),
        )
    )
elif os.environ.get("EMAIL_FILE_PATH"):
    globals().update(
        mail_settings(
            "django.core.mail.backends.filebased.EmailBackend",
            file_path=os.environ["EMAIL_FILE_PATH"],
        )
    )
else:
    globals().update(mail_settings("django.core.mail.backends.console.EmailBackend"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_paidwebinar": {"handlers": ["console"], "level": "INFO"}},
}
