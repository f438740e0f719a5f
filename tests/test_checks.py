"""System checks: each is silent when its piece is there and names the line to add when
it is missing."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.models import Site

from tests.utils import use_mailer
from wagtail_paidwebinar import checks


def ids(messages) -> list[str]:
    return [message.id for message in messages]


class PluginUrls:
    urlpatterns = [
        path("webinars/", include("wagtail_paidwebinar.urls")),
        path("", include(wagtail_urls)),
    ]


class NoPluginUrls:
    urlpatterns = [path("", include(wagtail_urls))]


class PluginUrlsAfterWagtail:
    urlpatterns = [
        path("", include(wagtail_urls)),
        path("webinars/", include("wagtail_paidwebinar.urls")),
    ]


def test_the_test_settings_pass_every_check():
    # The same command CI runs on the example site.
    call_command("check", "--fail-level", "WARNING", stdout=StringIO())


@pytest.mark.parametrize(
    ("app", "check_id"),
    [
        ("wagtail.contrib.settings", "wagtail_paidwebinar.E002"),
        ("wagtail_modeladmin", "wagtail_paidwebinar.E003"),
        ("django_rq", "wagtail_paidwebinar.E004"),
    ],
)
def test_missing_app_is_named_with_the_line_to_add(monkeypatch, app, check_id):
    assert checks.check_installed_apps(None) == []
    # Re-populating the app registry without an app (override_settings) re-imports
    # Wagtail's API routers, which refuse to mount twice; ask the registry instead.
    installed = checks.apps.is_installed
    monkeypatch.setattr(
        checks.apps, "is_installed", lambda name: name != app and installed(name)
    )
    (message,) = checks.check_installed_apps(None)
    assert message.id == check_id
    assert message.hint == f'Add "{app}" to INSTALLED_APPS.'


def test_urls_included():
    with override_settings(ROOT_URLCONF=PluginUrls):
        assert checks.check_urls(None) == []


def test_urls_missing():
    with override_settings(ROOT_URLCONF=NoPluginUrls):
        (message,) = checks.check_urls(None)
    assert message.id == "wagtail_paidwebinar.E005"
    assert 'path("webinars/", include("wagtail_paidwebinar.urls"))' in message.hint


def test_urls_behind_wagtails_catch_all():
    with override_settings(ROOT_URLCONF=PluginUrlsAfterWagtail):
        (message,) = checks.check_urls(None)
    assert message.id == "wagtail_paidwebinar.E006"
    assert "Move " in message.hint


def test_urls_check_runs_with_the_check_command():
    with override_settings(ROOT_URLCONF=NoPluginUrls):
        with pytest.raises(SystemCheckError, match="wagtail_paidwebinar.E005"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


def test_queue_present_and_commit_mode_set(settings):
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = "mysite_webinars"
    settings.RQ_QUEUES = {"mysite_webinars": {"URL": "redis://127.0.0.1:6379/0"}}
    settings.RQ = {"COMMIT_MODE": "on_db_commit"}
    assert checks.check_queue(None) == []


def test_queue_missing_from_rq_queues(settings):
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = "mysite_webinars"
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/0"}}
    (message,) = checks.check_queue(None)
    assert message.id == "wagtail_paidwebinar.E007"
    assert "'mysite_webinars'" in message.msg
    assert message.hint.startswith('Add RQ_QUEUES["mysite_webinars"] = {"URL": ')


def test_queue_setting_left_out_names_the_setting(settings):
    # README's RQ_QUEUES is there but WAGTAIL_PAIDWEBINAR_QUEUE is not: the queue
    # falls back to "default", and the line to add is the setting, not a "default"
    # queue (which W004 would then flag).
    del settings.WAGTAIL_PAIDWEBINAR_QUEUE
    settings.RQ_QUEUES = {"mysite_webinars": {"URL": "redis://127.0.0.1:6379/0"}}
    (message,) = checks.check_queue(None)
    assert message.id == "wagtail_paidwebinar.E007"
    assert message.hint == 'Set WAGTAIL_PAIDWEBINAR_QUEUE = "mysite_webinars".'


@pytest.mark.parametrize("rq", [None, {}, {"COMMIT_MODE": "auto"}])
def test_commit_mode_not_on_db_commit(settings, rq):
    if rq is None:
        del settings.RQ
    else:
        settings.RQ = rq
    (message,) = checks.check_queue(None)
    assert message.id == "wagtail_paidwebinar.E008"
    assert message.hint == 'Set RQ = {"COMMIT_MODE": "on_db_commit"}.'


# A site still on EMAIL_* under Django 6.1 is warned by Django at startup.
@pytest.mark.filterwarnings(r"ignore:The EMAIL_\w+ setting is deprecated")
def test_email_timeout(settings):
    if hasattr(settings, "MAILERS"):  # the test settings on Django 6.1
        del settings.MAILERS
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_TIMEOUT = 20
    assert checks.check_email(None) == []
    settings.EMAIL_TIMEOUT = None
    (message,) = checks.check_email(None)
    assert message.id == "wagtail_paidwebinar.W001"
    assert message.hint == "Set EMAIL_TIMEOUT = 20."
    # A backend without a server has nothing to time out.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert checks.check_email(None) == []


def test_smtp_timeout_in_mailers(settings):
    # Django 6.1 replaces the EMAIL_* settings with MAILERS.
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    settings.MAILERS = {"default": {"BACKEND": smtp, "OPTIONS": {"timeout": 20}}}
    assert checks.check_email(None) == []
    settings.MAILERS = {"default": {"BACKEND": smtp, "OPTIONS": {"host": "mx"}}}
    (message,) = checks.check_email(None)
    assert message.id == "wagtail_paidwebinar.W001"
    assert message.hint == 'Add "timeout": 20 to MAILERS["default"]["OPTIONS"].'
    locmem = "django.core.mail.backends.locmem.EmailBackend"
    settings.MAILERS = {"default": {"BACKEND": locmem}}
    assert checks.check_email(None) == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    ],
)
def test_process_local_cache_is_a_deploy_warning(settings, backend):
    settings.CACHES = {"default": {"BACKEND": backend}}
    (message,) = checks.check_throttle_cache(None)
    assert message.id == "wagtail_paidwebinar.W002"
    assert "RedisCache" in message.hint


def test_shared_cache_is_silent(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/2",
        }
    }
    assert checks.check_throttle_cache(None) == []


def test_base_url_setting(settings):
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = "https://webinars.example.com"
    assert checks.check_base_url(None) == []
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = "http://webinars.example.com"
    (message,) = checks.check_base_url(None)
    assert message.id == "wagtail_paidwebinar.W003"
    assert "WAGTAIL_PAIDWEBINAR_BASE_URL" in message.hint


@pytest.mark.django_db
def test_base_url_from_the_default_site(settings):
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = ""
    Site.objects.filter(is_default_site=True).update(
        hostname="webinars.example.com", port=80
    )
    (message,) = checks.check_base_url(None)
    assert "'http://webinars.example.com'" in message.msg
    Site.objects.filter(is_default_site=True).update(port=443)
    assert checks.check_base_url(None) == []


def test_deploy_checks_only_with_deploy(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = "http://webinars.example.com"
    # A production mailer: Django 6.1's own deploy check refuses locmem (mail.E001).
    use_mailer(settings, "django.core.mail.backends.smtp.EmailBackend", timeout=20)
    call_command("check", "--fail-level", "WARNING", stdout=StringIO())
    out = StringIO()
    call_command("check", "--deploy", stdout=out, stderr=out)
    for check_id in ("W002", "W003"):
        assert f"wagtail_paidwebinar.{check_id}" in out.getvalue()


def test_dedicated_queue(settings):
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = "default"
    (message,) = checks.check_dedicated_queue(None)
    assert message.id == "wagtail_paidwebinar.W004"
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = "mysite_webinars"
    assert checks.check_dedicated_queue(None) == []


@pytest.mark.parametrize("redis", [True, False])
def test_example_site_shares_its_cache_when_given_redis(redis, tmp_path):
    """The example site under several gunicorn workers (bench/gate_load.py): with
    REDIS_URL its processes share one cache (the throttle counters, sessions), so
    `check --deploy` has no W002; without services it stays on the per-process
    default, and the check says so."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["EXAMPLE_SITE_VAR_DIR"] = str(tmp_path)
    if redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/15"  # only read, never reached
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.core import checks; "
        "print(settings.CACHES['default']['BACKEND']); print(settings.SESSION_ENGINE); "
        "print(sorted({m.id for m in checks.run_checks(include_deployment_checks=True)"
        " if m.id.startswith('wagtail_paidwebinar')}))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        cwd=root / "example_site",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    if redis:
        assert out[0] == "django.core.cache.backends.redis.RedisCache"
        assert out[1] == "django.contrib.sessions.backends.cached_db"
        assert "wagtail_paidwebinar.W002" not in out[2]
    else:
        assert out[0] == "django.core.cache.backends.locmem.LocMemCache"
        assert "wagtail_paidwebinar.W002" in out[2]
