"""Every invitations admin view refuses users without the permission it needs, and
names are escaped on every admin page."""

from __future__ import annotations

import socket

import pytest
from django.core import mail
from django.urls import reverse

from tests.fixtures_invitations import (
    LINK_URLS,
    MAILING_COMPOSE,
    MAILING_EXPORT,
    MAILING_SEND,
    SUBSCRIBER_PERMS,
)
from tests.utils import admin_url, make_user, use_mailer
from wagtail_paidwebinar.models import Mailing, MailingStatus, Subscriber

HOME = "/admin/"
VIEW_MAILING = "wagtail_paidwebinar.view_mailing"

# (action, method, which users may) - users: "none", "composer", "sender",
# "exporter" (export_mailing without view_personal_link_url), "full".
MATRIX = [
    ("index", "get", {"composer", "sender", "exporter", "full"}),
    ("create", "get", {"composer", "full"}),
    ("detail", "get", {"composer", "sender", "exporter", "full"}),
    ("progress", "get", {"composer", "sender", "exporter", "full"}),
    ("preview", "get", {"composer", "sender", "full"}),
    ("edit", "get", {"composer", "full"}),
    ("test_send", "post", {"composer", "full"}),
    ("send", "get", {"sender", "full"}),
    ("send", "post", {"sender", "full"}),
    ("pause", "post", {"sender", "full"}),
    ("resume", "post", {"sender", "full"}),
    ("cancel", "post", {"sender", "full"}),
    ("retry", "post", {"sender", "full"}),
    ("export", "get", {"full"}),
    ("messages", "get", {"full"}),
]
USERS = {
    "none": [],
    "composer": MAILING_COMPOSE,
    "sender": [VIEW_MAILING, MAILING_SEND],
    "exporter": [VIEW_MAILING, MAILING_EXPORT],
    "full": [*MAILING_COMPOSE, MAILING_SEND, MAILING_EXPORT, LINK_URLS],
}


def action_url(action: str, mailing: Mailing) -> str:
    if action in ("index", "create"):
        return admin_url("mailing", action)
    return admin_url("mailing", action, mailing.pk)


@pytest.mark.parametrize("role", sorted(USERS))
def test_permission_matrix(client, role, draft_mailing):
    client.force_login(make_user(f"user_{role}", perms=USERS[role]))
    for action, method, allowed in MATRIX:
        mailing_before = Mailing.objects.get(pk=draft_mailing.pk)
        response = getattr(client, method)(action_url(action, draft_mailing))
        if role in allowed:
            assert response.status_code in (200, 302), (role, action)
            if response.status_code == 302:
                assert response.url != HOME, (role, action)
        else:
            assert response.status_code == 302, (role, action)
            assert response.url == HOME, (role, action)
            # Refused requests change nothing.
            after = Mailing.objects.get(pk=draft_mailing.pk)
            assert after.status == mailing_before.status, (role, action)
    if role not in ("sender", "full"):
        assert Mailing.objects.get(pk=draft_mailing.pk).status == MailingStatus.DRAFT
    if role not in ("composer", "full"):
        assert not [m for m in mail.outbox if "[Test]" in m.subject]


def test_anonymous_users_go_to_the_login_page(client, draft_mailing):
    response = client.get(action_url("detail", draft_mailing))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_progress_poll_without_permission_is_403(client, draft_mailing):
    client.force_login(make_user("nobody"))
    response = client.get(
        action_url("progress", draft_mailing),
        headers={"x-requested-with": "XMLHttpRequest"},
    )
    assert response.status_code == 403


def test_preview_masks_links_for_users_who_may_not_see_them(
    client, draft_mailing, invitees
):
    client.force_login(make_user("composer", perms=MAILING_COMPOSE))
    anna = next(link for link in invitees if link.email == "anna@example.com")
    body = client.get(
        action_url("preview", draft_mailing), {"recipient": f"l{anna.pk}"}
    ).content.decode()
    assert anna.get_url() not in body
    assert anna.token not in body


def test_subscriber_admin_needs_subscriber_permissions(client, subscriber_list):
    client.force_login(make_user("composer", perms=MAILING_COMPOSE))
    response = client.get(admin_url("subscriber", "index"))
    assert response.status_code == 302 and response.url == HOME
    client.force_login(make_user("subs", perms=SUBSCRIBER_PERMS))
    assert client.get(admin_url("subscriber", "index")).status_code == 200
    response = client.get(admin_url("mailing", "index"))
    assert response.status_code == 302 and response.url == HOME


def test_names_are_escaped_in_admin_listings(mailing_editor_client, subscriber_list):
    evil = Subscriber.objects.create(
        name='<script>alert("x")</script>', email="evil@example.com"
    )
    evil.lists.add(subscriber_list)
    subscriber_list.name = "<img src=x onerror=alert(1)>"
    subscriber_list.save()
    for name in ("subscriber", "subscriberlist"):
        body = mailing_editor_client.get(admin_url(name, "index")).content.decode()
        assert '<script>alert("x")</script>' not in body
        assert "<img src=x onerror=alert(1)>" not in body
    body = mailing_editor_client.get(admin_url("subscriber", "index")).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_names_are_escaped_in_mailing_pages(mailing_editor_client, webinar, invitees):
    from wagtail_paidwebinar.mailing import create_mailing

    mailing = create_mailing(
        webinar,
        subject="<b>Bold</b> {{ name }}",
        body_html="<p>Hi</p>",
        audience="link_holders",
    )
    for action in ("detail", "preview", "messages", "send"):
        body = mailing_editor_client.get(action_url(action, mailing)).content.decode()
        assert "<script>alert(1)</script>" not in body, action
        assert "<b>Bold</b>" not in body, action
    index = mailing_editor_client.get(action_url("index", mailing)).content.decode()
    assert "<b>Bold</b>" not in index


def test_test_send_failure_is_a_message_not_a_500(
    mailing_editor_client, draft_mailing, settings
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    use_mailer(
        settings,
        "django.core.mail.backends.smtp.EmailBackend",
        host="127.0.0.1",
        port=port,  # nothing listens there
        timeout=2,
    )
    response = mailing_editor_client.post(
        action_url("test_send", draft_mailing), follow=True
    )
    assert response.status_code == 200
    assert "The test message could not be sent" in response.content.decode()


def test_test_send_without_own_address(client, draft_mailing):
    user = make_user("noaddress", perms=MAILING_COMPOSE)
    user.email = ""
    user.save()
    client.force_login(user)
    response = client.post(action_url("test_send", draft_mailing), follow=True)
    assert "Your account has no e-mail address" in response.content.decode()
    assert mail.outbox == []


def test_listings_show_counts(mailing_editor_client, draft_mailing, subscriber_list):
    body = mailing_editor_client.get(
        admin_url("subscriberlist", "index")
    ).content.decode()
    assert "Newsletter" in body
    Mailing.objects.filter(pk=draft_mailing.pk).update(status=MailingStatus.DONE)
    body = mailing_editor_client.get(admin_url("mailing", "index")).content.decode()
    assert "0 sent, 0 failed, 0 in total" in body


@pytest.mark.parametrize(
    "name",
    [
        ("subscriberlist", "index"),
        ("subscriberlist", "create"),
        ("signature", "index"),
        ("signature", "create"),
        ("subscriber", "create"),
    ],
)
def test_other_invitations_pages_need_their_model_permissions(
    client, plain_editor, mailing_editor, name
):
    client.force_login(plain_editor)
    response = client.get(admin_url(*name))
    assert response.status_code == 302 and response.url == HOME
    client.force_login(
        make_user(
            "signer",
            perms=[
                *SUBSCRIBER_PERMS,
                *[f"wagtail_paidwebinar.{a}_signature" for a in ("view", "add")],
            ],
        )
    )
    assert client.get(admin_url(*name)).status_code == 200


def test_compose_prefills_the_webinar(mailing_editor_client, webinar):
    response = mailing_editor_client.get(
        admin_url("mailing", "create"),
        {"webinar": webinar.pk},
    )
    assert response.status_code == 200
    assert response.context["form"].initial["webinar"] == webinar.pk
    bad = mailing_editor_client.get(
        admin_url("mailing", "create"), {"webinar": "x" * 50}
    )
    assert bad.status_code == 200


def test_send_invitation_button_on_webinar_pages(
    admin_client, client, webinar, superuser
):
    edit = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
    response = admin_client.get(edit)
    assert response.status_code == 200
    create = admin_url("mailing", "create")
    assert f"{create}?webinar={webinar.pk}" in response.content.decode()
    # Not offered to someone who may edit pages but not compose mailings.
    editor = make_user("pages_only")
    from wagtail_paidwebinar.modeladmin import invitation_buttons

    assert invitation_buttons(webinar, editor) == []
    assert (
        invitation_buttons(webinar.get_parent(), admin_client.session and editor) == []
    )


def _secret_of(link) -> str:
    """The part of a token that admits (the MAC after the public id)."""
    return link.token.rpartition(".")[2]


@pytest.mark.parametrize("role", ["composer", "sender"])
def test_preview_never_gives_a_working_url_to_users_who_may_not_see_them(
    client, role, webinar, invitees, subscriber_list, mailing_editor
):
    """A merge field in the subject (or anywhere) must not carry a live personal URL
    to a user without ``view_personal_link_url``: not for a planned link holder, not
    for a subscriber who already has a link, not for a ledger row once sending
    started; not on the preview page, not in its frame."""
    from wagtail_paidwebinar.actions import generate_links
    from wagtail_paidwebinar.mailing import create_mailing, start_mailing

    ewa = Subscriber.objects.get(email="ewa@example.com")
    ewa_link = generate_links(webinar, "Ewa Lis <ewa@example.com>").created[0]
    holders = create_mailing(
        webinar,
        subject="{{ link }}",
        body_html='<p>{{ link }} <a href="{{ link }}">join</a></p>',
        audience="link_holders",
        user=mailing_editor,
    )
    members = create_mailing(
        webinar,
        subject="{{ link }} for {{ name }}",
        body_html="<p>{{ link }}</p>",
        audience=subscriber_list,
        user=mailing_editor,
    )
    anna = next(link for link in invitees if link.email == "anna@example.com")
    requests = [(holders, f"l{anna.pk}", anna), (members, f"s{ewa.pk}", ewa_link)]
    client.force_login(make_user(f"user_{role}", perms=USERS[role]))
    started = create_mailing(
        webinar,
        subject="{{ link }}",
        body_html="<p>{{ link }}</p>",
        audience="link_holders",
        user=mailing_editor,
    )
    start_mailing(started)
    row = started.recipients.get(link=anna)
    requests.append((started, f"r{row.pk}", anna))
    for mailing, key, link in requests:
        for action in ("preview", "preview_frame"):
            response = client.get(action_url(action, mailing), {"recipient": key})
            assert response.status_code == 200, (action, key)
            body = response.content.decode()
            assert _secret_of(link) not in body, (role, action, key)
            assert link.token not in body, (role, action, key)
        # The subject still shows where the link goes (a placeholder, not nothing).
        page = client.get(action_url("preview", mailing), {"recipient": key})
        assert webinar.url_path.rstrip("/").rpartition("/")[2] in page.content.decode()


def test_preview_shows_working_urls_to_users_who_may_see_them(
    mailing_editor_client, webinar, invitees, mailing_editor
):
    from wagtail_paidwebinar.mailing import create_mailing

    mailing = create_mailing(
        webinar,
        subject="{{ link }}",
        body_html="<p>{{ link }}</p>",
        audience="link_holders",
        user=mailing_editor,
    )
    anna = next(link for link in invitees if link.email == "anna@example.com")
    page = mailing_editor_client.get(
        action_url("preview", mailing), {"recipient": f"l{anna.pk}"}
    )
    assert anna.token in page.content.decode()


def test_placeholder_preview_has_no_working_url_in_any_part(webinar, invitees):
    """The renderer itself (subject, HTML, text and the .ics) when asked for a
    placeholder link."""
    from wagtail_paidwebinar.mailing import create_mailing, render_preview

    mailing = create_mailing(
        webinar,
        subject="{{ link }}",
        body_html="<p>{{ name }}: {{ link }}</p>",
        audience="link_holders",
    )
    anna = invitees[0]
    real = render_preview(mailing, anna)
    assert _secret_of(anna) in real.subject + real.html + real.text + real.ics
    masked = render_preview(mailing, anna, real_link=False)
    for part in (masked.subject, masked.html, masked.text, masked.ics):
        assert _secret_of(anna) not in part
        assert anna.token not in part
    assert "Anna Nowak" in masked.html  # still this recipient's message


def test_test_send_never_carries_a_participants_url(client, webinar, invitees):
    """The test send (a composer's only way to receive the e-mail) uses a sample link
    the gate refuses, whatever the merge fields say."""
    from wagtail_paidwebinar.mailing import create_mailing

    mailing = create_mailing(
        webinar,
        subject="{{ link }}",
        body_html="<p>{{ link }}</p>",
        audience="link_holders",
    )
    client.force_login(make_user("composer", perms=MAILING_COMPOSE))
    client.post(action_url("test_send", mailing))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    parts = [message.subject, message.body]
    parts += [str(alt[0]) for alt in getattr(message, "alternatives", [])]
    parts += [str(att[1]) for att in message.attachments if isinstance(att, tuple)]
    whole = "\n".join(parts) + message.message().as_string()
    for link in invitees:
        assert _secret_of(link) not in whole
    assert "?access=" in message.subject  # a (refused) sample link is there
