"""Whole translated sentences where wagtail-modeladmin builds generic ones from
verbose names (issue 12): delete confirmation, delete message, edit title; and a
mailing still being prepared is not "resumed with 0 recipients" (issue 14)."""

from __future__ import annotations

import html
import io

import pytest
from django.core.management import call_command
from django.test import Client

from tests.fixtures_mailing import make_link_holders
from tests.utils import admin_url, make_user
from wagtail_paidwebinar.mailing import create_mailing, start_mailing
from wagtail_paidwebinar.models import (
    Mailing,
    MailingStatus,
    Signature,
    Subscriber,
    SubscriberList,
)


def messages_of(response) -> list[str]:
    # Wagtail's admin messages escape the text (names are user input).
    return [html.unescape(str(m)) for m in response.context["messages"]]


def make_objects(webinar):
    return {
        "subscriber": Subscriber.objects.create(name="Ala Kot", email="ala@example.pl"),
        "subscriberlist": SubscriberList.objects.create(name="Klienci 2031"),
        "signature": Signature.objects.create(name="Zespół", body="<p>Zespół</p>"),
        "mailing": create_mailing(webinar, subject="Zaproszenie", body_html="<p>x</p>"),
    }


EXPECTED = {
    "subscriber": (
        "Delete subscriber",
        "Delete this subscriber?",
        "Subscriber “Ala Kot <ala@example.pl>” deleted.",
        "Editing subscriber",
    ),
    "subscriberlist": (
        "Delete subscriber list",
        "Delete this list? Its subscribers stay, only the list goes.",
        "List “Klienci 2031” deleted; its subscribers stay.",
        "Editing subscriber list",
    ),
    "signature": (
        "Delete signature",
        "Delete this signature?",
        "Signature “Zespół” deleted.",
        "Editing signature",
    ),
    "mailing": (
        "Delete mailing",
        "Delete this mailing and its delivery log?",
        "Mailing “Zaproszenie” and its delivery log deleted.",
        "Editing mailing",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(EXPECTED))
def test_delete_and_edit_speak_in_whole_sentences(admin_client, webinar, model):
    obj = make_objects(webinar)[model]
    title, question, deleted, edit_title = EXPECTED[model]

    page = admin_client.get(admin_url(model, "edit", obj.pk))
    assert f"<title>{edit_title}" in page.content.decode()

    page = admin_client.get(admin_url(model, "delete", obj.pk))
    body = page.content.decode()
    assert f"<title>{title}" in body
    assert question in body
    assert "Confirm deletion of" not in body and "Are you sure" not in body

    response = admin_client.post(admin_url(model, "delete", obj.pk), follow=True)
    assert not type(obj).objects.filter(pk=obj.pk).exists()
    shown = messages_of(response)
    assert deleted in " ".join(shown), shown
    assert not any("' deleted." in m for m in shown)


@pytest.mark.django_db
def test_delete_refused_without_permission(webinar):
    obj = make_objects(webinar)["signature"]
    client = Client()
    client.force_login(make_user("nobody"))
    response = client.post(admin_url("signature", "delete", obj.pk))
    assert response.status_code in (302, 403)
    assert Signature.objects.filter(pk=obj.pk).exists()


# --- resuming a mailing that is still being prepared -------------------------------

QUEUE = "paidwebinar-resume-preparing"


def work(queue) -> None:
    """What a worker does: run every queued job, here, until none is left."""
    from rq import SimpleWorker

    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.fixture
def background_queue(settings, smtp_settings):
    import django_rq
    from django_rq import settings as rq_settings

    from tests.utils import embedded_queue_config

    rq_settings.QUEUES[QUEUE] = {**embedded_queue_config(), "ASYNC": True}
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = QUEUE
    settings.WAGTAIL_PAIDWEBINAR_START_IN_BACKGROUND_ABOVE = 5
    yield django_rq.get_queue(QUEUE)
    rq_settings.QUEUES.pop(QUEUE, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_resume_while_preparing_says_so(
    webinar, background_queue, smtp_server, admin_client
):
    links = make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    assert start_mailing(mailing) == 0
    for job_id in background_queue.job_ids:  # the preparation lost with its worker
        background_queue.remove(job_id)

    response = admin_client.post(
        admin_url("mailing", "resume", mailing.pk), follow=True
    )
    shown = " ".join(messages_of(response))
    assert "still being prepared" in shown
    assert "0 recipients" not in shown and "Resumed" not in shown
    assert Mailing.objects.get(pk=mailing.pk).status == MailingStatus.PREPARING

    out = io.StringIO()
    call_command("paidwebinar_send", str(mailing.pk), stdout=out)
    assert "still being prepared" in out.getvalue()
    assert "0 recipients" not in out.getvalue()

    work(background_queue)  # the preparation queued again does its work, once
    assert Mailing.objects.get(pk=mailing.pk).status == MailingStatus.DONE
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}

    # Resuming a mailing that is not preparing still counts what it queues.
    response = admin_client.post(
        admin_url("mailing", "resume", mailing.pk), follow=True
    )
    assert "Resumed: 0 recipients queued." in " ".join(messages_of(response))


# --- listing counts ------------------------------------------------------------------


@pytest.mark.django_db
def test_listing_counts_are_whole_plurals(admin_client, webinar):
    """Not "<count> <verbose_name_plural>" (Polish: "5 linki osobiste"), but one
    translated plural per model."""
    from wagtail_paidwebinar.actions import generate_links
    from wagtail_paidwebinar.paginators import count_label

    generate_links(webinar, "Anna\nJan\nOla")
    body = admin_client.get(admin_url("personallink", "list")).content.decode()
    assert "3 personal links" in body
    make_objects(webinar)
    for model, text in (
        ("subscriber", "1 subscriber"),
        ("subscriberlist", "1 subscriber list"),
        ("signature", "1 signature"),
        ("mailing", "1 mailing"),
    ):
        body = admin_client.get(admin_url(model, "index")).content.decode()
        assert text in " ".join(body.split()), model
    assert count_label("mailing", 5) == "5 mailings"
    assert count_label("page", 5) is None
