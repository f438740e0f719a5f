"""Payments in the admin: the reference and "invitation sent" on each link, the
"from payments" filter, the delivery log, "Test the webhook", and "e-mail the new
link now" on re-issue (issue 12 item 7)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from tests.fixtures_links import LINK_PERMS
from tests.fixtures_payments import SECRET, post_signed, purchase_body
from tests.utils import admin_url, make_user
from wagtail_paidwebinar.models import MailingRecipient, PersonalLink

pytestmark = pytest.mark.django_db

DELIVERIES = "wagtail_paidwebinar_payments_deliveries"
TEST_PAGE = "wagtail_paidwebinar_payments_test"
SEND = "wagtail_paidwebinar.send_mailing"


@pytest.fixture
def paid_link(client, webinar, webhook_secret):
    link_id = post_signed(client, purchase_body(webinar)).json()["link"]
    client.logout()
    return PersonalLink.objects.get(pk=link_id)


@pytest.fixture
def sender(db):
    """May change links and send mailings."""
    return make_user(
        "sender",
        perms=[LINK_PERMS["view"], LINK_PERMS["change"], LINK_PERMS["add"], SEND],
    )


def test_listing_shows_the_reference_and_filters_payments(
    client, links_editor, links, paid_link
):
    client.force_login(links_editor)
    html = client.get(admin_url("personallink", "list")).content.decode()
    assert "Payment reference" in html
    assert "order-1001" in html
    assert "Invitation sent" in html
    paid = client.get(admin_url("personallink", "list"), {"from_payments": "true"})
    names = [link.name for link in paid.context["object_list"]]
    assert names == ["Anna Nowak"]
    assert paid.context["object_list"][0].pk == paid_link.pk
    unpaid = client.get(admin_url("personallink", "list"), {"from_payments": "false"})
    assert len(unpaid.context["object_list"]) == 3


def test_delivery_log_for_editors_only(client, links_editor, paid_link):
    url = reverse(DELIVERIES)
    plain = make_user("plain")
    client.force_login(plain)
    assert client.get(url).status_code in (302, 403)
    assert client.get(reverse(TEST_PAGE)).status_code in (302, 403)
    client.force_login(links_editor)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "order-1001" in html
    assert "Link created" in html
    assert SECRET not in html
    assert paid_link.token not in html
    # In the menu for editors.
    assert url in client.get(reverse("wagtailadmin_home")).content.decode()


def test_the_test_page_shows_a_real_signed_request(
    client, links_editor, webinar, webhook_secret
):
    client.force_login(links_editor)
    response = client.get(reverse(TEST_PAGE), {"webinar": webinar.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET not in html
    assert SECRET[:4] in html  # masked
    assert "curl -X POST" in html
    assert "hmac.new(" in html
    example = response.context["example"]
    assert example["url"].endswith("/webinars/hooks/purchase/")
    # The example as shown is accepted by the webhook.
    client.logout()
    accepted = post_signed(client, example["body"].encode(), header=example["header"])
    assert accepted.status_code == 200
    assert accepted.json()["created"] is True


def test_reissue_offers_to_email_the_new_link(
    client,
    sender,
    webinar,
    paid_link,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    client.force_login(sender)
    url = admin_url("personallink", "reissue", paid_link.pk)
    page = client.get(url).content.decode()
    assert 'name="send_invitation"' in page
    assert "checked" in page
    old_url = paid_link.get_url()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"send_invitation": "1"})
    paid_link.refresh_from_db()
    new_url = paid_link.get_url()
    assert new_url != old_url
    # The purchase's invitation and the re-issued one; the latest has the new URL.
    assert MailingRecipient.objects.filter(link=paid_link).count() == 2
    assert new_url in mail.outbox[-1].body
    assert old_url not in mail.outbox[-1].body


def test_reissue_without_the_box_or_the_permission_sends_nothing(
    client, links_editor, sender, webinar, paid_link, django_capture_on_commit_callbacks
):
    url = admin_url("personallink", "reissue", paid_link.pk)
    client.force_login(sender)
    client.post(url, {})
    assert MailingRecipient.objects.filter(link=paid_link).count() == 1
    # May re-issue but not send mailings: no offer, and a forged field is ignored.
    client.force_login(links_editor)
    assert 'name="send_invitation"' not in client.get(url).content.decode()
    client.post(url, {"send_invitation": "1"})
    assert MailingRecipient.objects.filter(link=paid_link).count() == 1


def test_reissue_of_a_link_without_address_does_not_preselect(client, sender, links):
    client.force_login(sender)
    jan = next(link for link in links if not link.email)
    page = client.get(admin_url("personallink", "reissue", jan.pk)).content.decode()
    assert "checked" not in page
    assert "no e-mail address" in page
