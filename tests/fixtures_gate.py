"""Fixtures of the gate area: webinars with a room, links, separate browsers."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from wagtail.documents import get_document_model
from wagtail.rich_text import RichText

from tests.utils import make_webinar
from wagtail_paidwebinar.models import PersonalLink

ROOM_WORD = "Zoomcode7731"
UA = "Mozilla/5.0 (X11; Linux x86_64) GateTest/1.0"


def room_blocks(word: str = ROOM_WORD) -> list:
    return [("text", RichText(f"<p>Meeting code: {word}</p>"))]


def make_link(webinar, name: str = "Anna Nowak", **fields) -> PersonalLink:
    return PersonalLink.objects.create(webinar=webinar, name=name, **fields)


def link_path(link: PersonalLink, token: str | None = None) -> str:
    """The personal URL as a path (the test client talks to the default site)."""
    return f"{link.webinar.url}?access={token or link.token}"


def claim(browser: Client, link: PersonalLink, **extra):
    """POST the confirm form as a browser would."""
    return browser.post(link_path(link), {"pw_action": "claim"}, **extra)


def enter_password(browser: Client, webinar, password: str, **extra):
    return browser.post(
        webinar.url, {"pw_action": "password", "password": password}, **extra
    )


@pytest.fixture
def clear_gate_cache():
    """Throttle counters live in the cache; tests must not see each other's.

    Gate test modules use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def browser():
    """A factory of separate browsers (each its own cookie jar)."""

    def make(**defaults) -> Client:
        defaults.setdefault("HTTP_USER_AGENT", UA)
        return Client(**defaults)

    return make


@pytest.fixture
def room_webinar(index):
    """A webinar without a room password, with a room word to look for."""
    return make_webinar(index, title="Open room", slug="open-room", room=room_blocks())


@pytest.fixture
def password_webinar(index):
    """Link + room password "kawa123"."""
    return make_webinar(
        index,
        title="Password room",
        slug="password-room",
        room=room_blocks(),
        room_password="kawa123",
    )


@pytest.fixture
def anna(room_webinar):
    return make_link(room_webinar, "Anna Nowak")


# --- room materials ----------------------------------------------------------------


@pytest.fixture
def document(db):
    Document = get_document_model()
    doc = Document(title="Slides")
    doc.file.save("slides.pdf", ContentFile(b"%PDF-1.4 secret slides"), save=False)
    doc.save()
    return doc


@pytest.fixture
def other_document(db):
    Document = get_document_model()
    doc = Document(title="Unrelated")
    doc.file.save("other.pdf", ContentFile(b"%PDF-1.4 other"), save=False)
    doc.save()
    return doc


@pytest.fixture
def material_webinar(index, document):
    return make_webinar(
        index,
        title="With slides",
        slug="with-slides",
        room=[
            ("text", RichText(f"<p>{ROOM_WORD}</p>")),
            ("materials", {"heading": "Slides", "documents": [document]}),
        ],
    )


def material_url(webinar, document):
    return reverse("wagtail_paidwebinar:material", args=[webinar.pk, document.pk])
