"""Fixtures of the invitations area (subscribers, mailings admin, unsubscribe)."""

from __future__ import annotations

import json

import pytest

from tests.utils import embedded_queue_config, make_user
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.models import Subscriber, SubscriberList

APP = "wagtail_paidwebinar"
SUBSCRIBER_PERMS = [
    f"{APP}.{action}_{model}"
    for model in ("subscriber", "subscriberlist")
    for action in ("view", "add", "change", "delete")
]
MAILING_COMPOSE = [f"{APP}.{a}_mailing" for a in ("view", "add", "change", "delete")]
MAILING_SEND = f"{APP}.send_mailing"
MAILING_EXPORT = f"{APP}.export_mailing"
LINK_URLS = f"{APP}.view_personal_link_url"


@pytest.fixture
def mailing_editor(db):
    """May compose, send and export mailings and manage subscribers."""
    return make_user(
        "mailing_editor",
        perms=[
            *SUBSCRIBER_PERMS,
            *MAILING_COMPOSE,
            MAILING_SEND,
            MAILING_EXPORT,
            LINK_URLS,
        ],
    )


@pytest.fixture
def mailing_editor_client(client, mailing_editor):
    client.force_login(mailing_editor)
    return client


@pytest.fixture
def plain_editor(db):
    """Has admin access and nothing of the invitations area."""
    return make_user("plain_editor")


@pytest.fixture
def invitees(webinar):
    """Three link holders with e-mails on ``webinar`` plus one without."""
    result = generate_links(
        webinar,
        "Anna Nowak <anna@example.com>\n"
        "Zażółć Gęślą Jaźń, zgj@example.pl\n"
        "<script>alert(1)</script> <xss@example.com>\n"
        "Jan Bez Maila",
    )
    assert result.ok, result
    return result.created


@pytest.fixture
def subscriber_list(db):
    """A list with two subscribed members and one who unsubscribed."""
    lst = SubscriberList.objects.create(name="Newsletter")
    for name, email, subscribed in (
        ("Ewa Lis", "ewa@example.com", True),
        ("Piotr Wąs", "piotr@example.com", True),
        ("Gone Away", "gone@example.com", False),
    ):
        subscriber = Subscriber.objects.create(
            name=name, email=email, subscribed=subscribed
        )
        subscriber.lists.add(lst)
    return lst


INVITATIONS_QUEUE = "paidwebinar-invitations-inline"


@pytest.fixture
def invitations_queue(settings):
    """The embedded default (fakeredis, ASYNC False: jobs run inline when the
    transaction commits) under its own name, even when REDIS_URL is set."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[INVITATIONS_QUEUE] = embedded_queue_config()
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = INVITATIONS_QUEUE
    yield INVITATIONS_QUEUE
    rq_settings.QUEUES.pop(INVITATIONS_QUEUE, None)


def draftail(text: str) -> str:
    """A one-paragraph Draftail value, as the rich text widget posts it."""
    return json.dumps(
        {
            "blocks": [
                {
                    "key": "a1b2c",
                    "type": "unstyled",
                    "text": text,
                    "depth": 0,
                    "inlineStyleRanges": [],
                    "entityRanges": [],
                }
            ],
            "entityMap": {},
        }
    )


@pytest.fixture
def draft_mailing(webinar, invitees, mailing_editor):
    """A draft invitation to the link holders of ``webinar``."""
    from wagtail_paidwebinar.mailing import create_mailing

    return create_mailing(
        webinar,
        subject="Your access to {{ webinar }}",
        body_html="<p>Hello {{ name }}, your link: {{ link }}</p>",
        audience="link_holders",
        user=mailing_editor,
    )
