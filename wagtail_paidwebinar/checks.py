"""System checks: every piece a site must add for the plugin, each named with the line
that adds it.

Without these, a missing piece passed ``manage.py check`` and failed later: a 500 in
the admin, or a ``NoReverseMatch`` buried in a recipient's "last error" after a
mailing. Each message says what breaks and its hint is the exact line to add.

Ids: ``wagtail_paidwebinar.E0xx`` are errors (the feature cannot work),
``wagtail_paidwebinar.W0xx`` warnings; W002-W004 run only with ``check --deploy``.
W010 warns when room documents could bypass the gate.
"""

from __future__ import annotations

import warnings
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from . import conf

PREFIX = "wagtail_paidwebinar."
URLS_LINE = 'path("webinars/", include("wagtail_paidwebinar.urls"))'
# Caches that live inside one process: each worker process of a deployment would
# count failed passwords on its own, multiplying the allowed attempts.
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
# App -> what breaks without it (the hint is the INSTALLED_APPS line).
REQUIRED_APPS = {
    "wagtail.contrib.settings": (
        "E002",
        "the 'Webinar mailing' site setting (sender, signature) has no admin page",
    ),
    "wagtail_modeladmin": (
        "E003",
        "the Invitations admin menu (subscribers, lists, mailings) cannot render",
    ),
    "django_rq": (
        "E004",
        "mailings are queued to django-rq, whose rqworker command is then missing",
    ),
}


@checks.register()
def check_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """WAGTAIL_PAIDWEBINAR_* values that cannot work (see :func:`conf.check`)."""
    try:
        conf.check()
    except conf.PaidWebinarImproperlyConfigured as exc:
        return [checks.Error(str(exc), id=PREFIX + "E001")]
    return []


@checks.register()
def check_installed_apps(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The apps the plugin needs next to it in INSTALLED_APPS."""
    return [
        checks.Error(
            f"{app!r} is not in INSTALLED_APPS: {what}.",
            hint=f'Add "{app}" to INSTALLED_APPS.',
            id=PREFIX + code,
        )
        for app, (code, what) in REQUIRED_APPS.items()
        if not apps.is_installed(app)
    ]


@checks.register(checks.Tags.urls)
def check_urls(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The plugin's URLs are included, and not behind Wagtail's catch-all.

    Read lazily here (Tags.urls) rather than at import: the URL conf imports views and
    so every app.
    """
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        path = reverse("wagtail_paidwebinar:unsubscribe", kwargs={"token": "check"})
    except NoReverseMatch:
        return [
            checks.Error(
                "The plugin's URLs are not included (no 'wagtail_paidwebinar' URL "
                "namespace): unsubscribe links and room materials cannot be built.",
                hint=f"Add {URLS_LINE} to urlpatterns in {settings.ROOT_URLCONF}, "
                'before path("", include(wagtail_urls)).',
                id=PREFIX + "E005",
            )
        ]
    try:
        match = resolve(path)
    except Resolver404:
        match = None
    if match is None or match.namespace != "wagtail_paidwebinar":
        return [
            checks.Error(
                f"{path} is not served by the plugin: its URLs come after a "
                "catch-all pattern (Wagtail's page serving) that swallows them.",
                hint=f"Move {URLS_LINE} above "
                f'path("", include(wagtail_urls)) in {settings.ROOT_URLCONF}.',
                id=PREFIX + "E006",
            )
        ]
    return []


@checks.register()
def check_queue(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The mailing queue exists in RQ_QUEUES and jobs wait for the transaction."""
    messages: list[checks.CheckMessage] = []
    queue = conf.get_setting("QUEUE")
    queues = getattr(settings, "RQ_QUEUES", None) or {}
    if queue not in queues:
        hint = (
            f'Add RQ_QUEUES["{queue}"] = {{"URL": "redis://127.0.0.1:6379/0", '
            '"DEFAULT_TIMEOUT": 600}.'
        )
        if queues and not hasattr(settings, "WAGTAIL_PAIDWEBINAR_QUEUE"):
            # The queue setting is what is missing, not a queue "default".
            hint = f'Set WAGTAIL_PAIDWEBINAR_QUEUE = "{next(iter(queues))}".'
        messages.append(
            checks.Error(
                f"RQ_QUEUES has no queue {queue!r} (WAGTAIL_PAIDWEBINAR_QUEUE): "
                "sending a mailing fails.",
                hint=hint,
                id=PREFIX + "E007",
            )
        )
    rq_settings: dict[str, Any] = getattr(settings, "RQ", None) or {}
    if rq_settings.get("COMMIT_MODE") != "on_db_commit":
        messages.append(
            checks.Error(
                'RQ["COMMIT_MODE"] is not "on_db_commit": a worker may pick up a '
                "mailing job before the mailing is committed and find nothing to "
                "send.",
                hint='Set RQ = {"COMMIT_MODE": "on_db_commit"}.',
                id=PREFIX + "E008",
            )
        )
    return messages


def _smtp_timeout_hint() -> str | None:
    """The line that sets an SMTP timeout, or None when one is set."""
    mailers = getattr(settings, "MAILERS", None)  # Django 6.1+
    if mailers is not None:
        default = mailers.get("default", {})
        backend = default.get("BACKEND", "django.core.mail.backends.smtp.EmailBackend")
        if not backend.endswith("smtp.EmailBackend"):
            return None
        if default.get("OPTIONS", {}).get("timeout") is not None:
            return None
        return 'Add "timeout": 20 to MAILERS["default"]["OPTIONS"].'
    with warnings.catch_warnings():
        # Django 6.1 deprecates EMAIL_* for MAILERS and warns on each read; the site
        # was told so at startup already.
        warnings.filterwarnings("ignore", r"The EMAIL_\w+ setting is deprecated")
        backend = getattr(settings, "EMAIL_BACKEND", "")
        timeout = getattr(settings, "EMAIL_TIMEOUT", None)
    if not backend.endswith("smtp.EmailBackend") or timeout is not None:
        return None
    return "Set EMAIL_TIMEOUT = 20."


@checks.register()
def check_email(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A mail server that stops answering must not hang a mailing job forever."""
    hint = _smtp_timeout_hint()
    if hint:
        return [
            checks.Warning(
                "No SMTP timeout is set: a mail server that stops answering holds "
                "a mailing job until RQ kills it, instead of a retry.",
                hint=hint,
                id=PREFIX + "W001",
            )
        ]
    return []


@checks.register(deploy=True)
def check_base_url(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Personal links (bearer tokens) must travel over https."""
    from .utils import base_url

    try:
        base = base_url()
    except DatabaseError:
        # No Site table yet (before migrate): nothing to judge.
        return []
    if base and not base.startswith("https://"):
        return [
            checks.Warning(
                f"Links in e-mails start with {base!r}, not https: personal links "
                "carry the token that admits their holder.",
                hint='Set WAGTAIL_PAIDWEBINAR_BASE_URL = "https://www.example.com" '
                "(your address), or serve the default Wagtail Site on port 443.",
                id=PREFIX + "W003",
            )
        ]
    return []


@checks.register(deploy=True)
def check_dedicated_queue(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Two sites sharing a Redis and the queue 'default' run each other's jobs."""
    if conf.get_setting("QUEUE") == "default":
        return [
            checks.Warning(
                'The mailing queue is "default": another site on the same Redis '
                "with a queue of that name takes these jobs and finds no mailing.",
                hint='Set WAGTAIL_PAIDWEBINAR_QUEUE = "mysite_webinars" (a name of '
                'this site), add it to RQ_QUEUES and run "manage.py rqworker '
                'mysite_webinars --with-scheduler".',
                id=PREFIX + "W004",
            )
        ]
    return []


def _storage_has_paths() -> bool:
    from django.core.files.storage import default_storage

    try:
        default_storage.path("wagtail-paidwebinar-check")
    except NotImplementedError:
        return False
    return True


@checks.register()
def check_document_serving(app_configs, **kwargs):
    """Room documents are gated in Wagtail's document view; a serve method that
    sends browsers to the storage's own URL skips that view."""
    method = getattr(settings, "WAGTAILDOCS_SERVE_METHOD", None)
    if method is None:
        # Wagtail's own default: redirect for storages without local paths.
        method = "serve_view" if _storage_has_paths() else "redirect"
    if method == "serve_view":
        return []
    return [
        checks.Warning(
            f"WAGTAILDOCS_SERVE_METHOD is {method!r}: documents used in a webinar "
            "room are then downloadable from the storage's URL by anyone who has "
            "it, without passing the webinar's gate.",
            hint=(
                'Set WAGTAILDOCS_SERVE_METHOD = "serve_view" and keep documents '
                "where the web server does not publish them (see README, "
                '"Private documents").'
            ),
            id=PREFIX + "W010",
        )
    ]


@checks.register(deploy=True)
def check_throttle_cache(app_configs, **kwargs):
    """``check --deploy``: the gate's throttle needs a cache every process shares."""
    alias = conf.get_setting("THROTTLE_CACHE")
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if alias in settings.CACHES and backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            f"The gate's password and token throttle counts failures in the cache "
            f"{alias!r} ({backend or 'not configured'}), which is not shared between "
            "processes: with several server processes each counts alone and the "
            "throttle's ceilings are multiplied by their number.",
            hint=(
                'Add a shared backend to CACHES, e.g. {"BACKEND": '
                '"django.core.cache.backends.redis.RedisCache", "LOCATION": '
                '"redis://127.0.0.1:6379/2"} (or Memcached, or the database cache), '
                "and point WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE at its alias (default: "
                "'default')."
            ),
            id=PREFIX + "W002",
        )
    ]
