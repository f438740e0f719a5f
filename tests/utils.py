"""Small helpers for the test suite (factories over mocks)."""

from __future__ import annotations

import datetime as dt

from config.mail import mail_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Site

from wagtail_paidwebinar.models import WebinarIndexPage, WebinarPage


def admin_url(model, action: str, *args, **kwargs) -> str:
    """The admin URL of ``action`` for ``model`` (a model class or its lower-case
    name): personal links are a snippet viewset, the Invitations models are
    wagtail-modeladmin. The one place the tests know the admin's URL names, so a
    move to another admin framework changes this function, not the tests."""
    name = model if isinstance(model, str) else model._meta.model_name
    if name == "personallink":
        url_name = f"wagtailsnippets_wagtail_paidwebinar_personallink:{action}"
    else:
        url_name = f"wagtail_paidwebinar_{name}_modeladmin_{action}"
    return reverse(url_name, args=args or None, kwargs=kwargs or None)


def site_root():
    return Site.objects.get(is_default_site=True).root_page


def make_index(title="Webinars", slug="webinars", parent=None) -> WebinarIndexPage:
    parent = parent or site_root()
    index = WebinarIndexPage(title=title, slug=slug)
    parent.add_child(instance=index)
    index.save_revision().publish()
    return index


def make_webinar(index=None, *, title="Django performance", slug=None, **fields):
    index = index or WebinarIndexPage.objects.first() or make_index()
    fields.setdefault("starts_at", timezone.now() + dt.timedelta(days=7))
    fields.setdefault("timezone", "Europe/Warsaw")
    fields.setdefault("intro", "<p>A public teaser.</p>")
    page = WebinarPage(
        title=title, slug=slug or title.lower().replace(" ", "-"), **fields
    )
    index.add_child(instance=page)
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def make_user(username="editor", *, superuser=False, perms=(), admin_access=True):
    """A user; ``perms`` are "app_label.codename" strings."""
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", "pw")
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    codenames = list(perms)
    if admin_access:
        codenames.append("wagtailadmin.access_admin")
    for full in codenames:
        app_label, codename = full.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def editors_group() -> Group:
    return Group.objects.get(name="Editors")


def embedded_queue_config() -> dict:
    """The example site's embedded django-rq queue: fakeredis, jobs run inline
    (``ASYNC: False``) when the transaction commits."""
    import fakeredis
    import redis

    return {
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


def use_mailer(settings, backend: str, **options) -> None:
    """Point the site's default mailer at ``backend`` in a test: ``MAILERS`` on
    Django 6.1+, ``EMAIL_BACKEND`` and ``EMAIL_*`` before (options named as in
    MAILERS: host, port, username, password, use_tls, use_ssl, timeout)."""
    for name, value in mail_settings(backend, **options).items():
        setattr(settings, name, value)
