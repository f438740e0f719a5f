"""System checks: settings that cannot work (errors) and set-ups that would let the
gate be bypassed (warnings; the throttle one only with ``check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from . import conf


@checks.register()
def check_settings(app_configs, **kwargs):
    try:
        conf.check()
    except conf.PaidWebinarImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="wagtail_paidwebinar.E001")]
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
            id="wagtail_paidwebinar.W010",
        )
    ]


# Backends whose counters live in one process (or nowhere): with several server
# processes each counts alone, so the throttle's ceilings multiply by their number.
_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(deploy=True)
def check_throttle_cache(app_configs, **kwargs):
    """``check --deploy``: the gate's throttle needs a cache every process shares."""
    alias = conf.get_setting("THROTTLE_CACHE")
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if alias in settings.CACHES and backend not in _LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            f"The gate's password and token throttle counts failures in the cache "
            f"{alias!r} ({backend or 'not configured'}), which is not shared between "
            "processes: with several server processes each counts alone and the "
            "throttle's ceilings are multiplied by their number.",
            hint=(
                "Add a shared backend to CACHES (Django's RedisCache, Memcached or "
                "the database cache) and point WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE at "
                "its alias (default: 'default')."
            ),
            id="wagtail_paidwebinar.W011",
        )
    ]
