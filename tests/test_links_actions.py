"""generate_links, revoke, reset, re-issue and export through the public API."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import ModelLogEntry, PageLogEntry

from tests.utils import make_user, make_webinar
from wagtail_paidwebinar import tokens
from wagtail_paidwebinar.actions import (
    export_header,
    export_rows,
    generate_links,
    reissue_link,
    reset_link_devices,
    revoke_link,
)
from wagtail_paidwebinar.models import LinkDevice, LinkStatus, PersonalLink

pytestmark = pytest.mark.django_db


def test_generate_from_paste_creates_links_with_pks_and_working_urls(webinar):
    user = make_user("gen")
    result = generate_links(
        webinar, "Zażółć Gęślą Jaźń\nAnna <anna@example.com>\n\n", user=user
    )
    assert result.ok and not result.aborted
    assert [link.name for link in result.created] == ["Zażółć Gęślą Jaźń", "Anna"]
    assert all(link.pk for link in result.created)
    link = PersonalLink.objects.get(pk=result.created[1].pk)
    assert link.email_normalized == "anna@example.com"
    assert link.created_by == user
    assert link.status() == LinkStatus.UNUSED
    url = link.get_url()
    assert url.startswith("https://webinars.example.com/webinars/")
    token = url.split("?access=", 1)[1]
    # Tokens name the link by its opaque public id, never its pk (issue 10).
    public_id, mac = tokens.parse_token(token)
    assert public_id == link.public_id
    assert tokens.verify_mac(link.public_id, webinar.pk, link.salt, mac)


def test_generate_from_tuples(webinar):
    result = generate_links(webinar, [("Anna", "anna@example.com"), ("Jan", "")])
    assert [(x.name, x.email) for x in result.created] == [
        ("Anna", "anna@example.com"),
        ("Jan", ""),
    ]


def test_database_holds_no_token(webinar, links):
    token = links[0].token
    mac = token.split(".", 1)[1]
    values = PersonalLink.objects.filter(pk=links[0].pk).values().get()
    assert all(mac not in str(v) for v in values.values())


def test_duplicates_with_existing_links_and_name_warnings(webinar, links):
    result = generate_links(
        webinar,
        "Someone Else <ANNA@example.COM>\nJan Kowalski\nNew Person, new@example.com",
    )
    assert [x.name for x in result.created] == ["Jan Kowalski", "New Person"]
    assert [(d.line, "Anna Nowak" in d.message) for d in result.duplicates] == [
        (1, True)
    ]
    assert [w.line for w in result.warnings] == [2]
    assert PersonalLink.objects.filter(webinar=webinar).count() == 5


def test_same_email_on_another_webinar_is_fine(index, webinar, links):
    other = make_webinar(index, title="Other webinar")
    result = generate_links(other, "Anna <anna@example.com>")
    assert len(result.created) == 1 and not result.duplicates


def test_nfd_names_are_stored_nfc(webinar):
    nfd = unicodedata.normalize("NFD", "Zażółć Gęślą Jaźń")
    result = generate_links(webinar, nfd)
    assert result.created[0].name == unicodedata.normalize("NFC", nfd)


def test_errors_keep_valid_lines_by_default(webinar):
    result = generate_links(webinar, "Good\nBad\x00Line\nEvil \u202egnp.exe\nAlso good")
    assert not result.ok
    assert [e.line for e in result.errors] == [2, 3]
    assert [x.name for x in result.created] == ["Good", "Also good"]


def test_all_or_nothing_creates_nothing_on_error(webinar):
    result = generate_links(webinar, "Good\nBad\x00Line", all_or_nothing=True)
    assert result.aborted and result.created == []
    assert not PersonalLink.objects.exists()
    result = generate_links(webinar, "Good\nAlso good", all_or_nothing=True)
    assert len(result.created) == 2 and not result.aborted


def test_expiry(webinar):
    expires = timezone.now() + dt.timedelta(days=3)
    result = generate_links(webinar, "Anna", expires_at=expires)
    assert result.created[0].expires_at == expires
    past = generate_links(webinar, "Jan", expires_at=timezone.now() - dt.timedelta(1))
    assert past.aborted and "past" in past.errors[0].message
    assert PersonalLink.objects.count() == 1


def test_generation_is_logged_on_the_webinar_without_token(webinar):
    user = make_user("gen")
    result = generate_links(webinar, "Anna\nJan", user=user)
    entry = PageLogEntry.objects.get(action="wagtail_paidwebinar.link.generate")
    assert entry.page_id == webinar.pk and entry.user == user
    assert entry.data["count"] == 2
    assert "Generated 2 personal links" in str(entry.message)
    for link in result.created:
        assert link.token.split(".")[1] not in str(entry.data)


def test_revoke(links):
    link = links[0]
    assert revoke_link(link) is True
    assert revoke_link(link) is False
    link.refresh_from_db()
    assert link.status() == LinkStatus.REVOKED
    assert (
        ModelLogEntry.objects.filter(
            action="wagtail_paidwebinar.link.revoke", object_id=str(link.pk)
        ).count()
        == 1
    )


def test_reset_devices(links):
    link = links[0]
    LinkDevice.objects.create(link=link, secret_hash="a" * 64)
    LinkDevice.objects.create(link=link, secret_hash="b" * 64)
    PersonalLink.objects.filter(pk=link.pk).update(claimed_at=timezone.now())
    link.refresh_from_db()
    assert link.status() == LinkStatus.IN_USE
    assert reset_link_devices(link) == 2
    link.refresh_from_db()
    assert link.claimed_at is None and not link.devices.exists()
    assert link.status() == LinkStatus.UNUSED
    entry = ModelLogEntry.objects.get(action="wagtail_paidwebinar.link.reset_devices")
    assert entry.data["devices"] == 2


def test_reissue_kills_the_old_url(links):
    link = links[0]
    LinkDevice.objects.create(link=link, secret_hash="a" * 64)
    old_token = link.token
    reissue_link(link)
    link.refresh_from_db()
    assert link.token != old_token
    link_id, old_mac = tokens.parse_token(old_token)
    assert not tokens.verify_mac(link.pk, link.webinar_id, link.salt, old_mac)
    assert not link.devices.exists()
    entry = ModelLogEntry.objects.get(action="wagtail_paidwebinar.link.reissue")
    assert old_mac not in str(entry.data) and link.salt not in str(entry.data)


def test_export_rows(links):
    rows = list(export_rows(PersonalLink.objects.all().order_by("pk")))
    assert export_header() == ["Name", "E-mail", "Link", "Expires at", "Status"]
    assert rows[0][:2] == ["Anna Nowak", "anna@example.com"]
    assert rows[0][2] == links[0].get_url()
    assert rows[0][4] == "Unused"
    no_urls = list(export_rows(PersonalLink.objects.all(), with_urls=False))
    assert all(len(r) == 4 for r in no_urls)


def test_ten_thousand_lines_in_one_transaction(webinar):
    text = "\n".join(f"Uczestnik {i} <u{i}@example.pl>" for i in range(10_000))
    with CaptureQueriesContext(connection) as ctx:
        result = generate_links(webinar, text)
    assert len(result.created) == 10_000 and result.ok
    assert len({link.pk for link in result.created}) == 10_000
    assert all(link.pk for link in result.created)
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    link_inserts = [q for q in inserts if "personallink" in q["sql"]]
    # PostgreSQL: one INSERT ... unnest(); elsewhere bulk_create batches of at most
    # 1000 (SQLite caps at 999 parameters per statement, so smaller there).
    if connection.vendor == "postgresql":
        assert len(link_inserts) == 1
    else:
        assert len(link_inserts) <= 10_000 // 80
    assert PersonalLink.objects.filter(webinar=webinar).count() == 10_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_with_the_same_email_make_one_link(index):
    """Two editors paste the same person at the same moment: one link, one duplicate."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...)")
    import threading

    from django.db import connections

    webinar = make_webinar(index, title="Race")
    barrier = threading.Barrier(2)
    results, failures = [], []

    def worker(name):
        try:
            barrier.wait(timeout=10)
            results.append(
                generate_links(webinar, f"{name} <same@example.com>\n{name} Solo")
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("Anna", "Ania")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert PersonalLink.objects.filter(email_normalized="same@example.com").count() == 1
    assert sum(len(r.duplicates) for r in results) == 1
    assert PersonalLink.objects.filter(webinar=webinar).count() == 3
