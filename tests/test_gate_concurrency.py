"""Simultaneous claims of one link: exactly one browser wins (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from tests.fixtures_gate import UA, link_path, make_link
from tests.utils import make_webinar
from wagtail_paidwebinar.models import AccessEvent, AccessEventKind, LinkDevice

THREADS = 24

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.usefixtures("clear_gate_cache"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks (select_for_update) need PostgreSQL; "
        "set DATABASE_URL=postgres://... to run",
    ),
]


def race(link, n: int, form: dict | None = None, clients: dict | None = None) -> list:
    """POST the confirm form (``form``, by default one without a nonce) from ``n``
    browsers released at the same instant; ``clients`` may hand some of them in."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    url = link_path(link)
    form = form or {"pw_action": "claim"}
    clients = clients or {}

    def one(i: int) -> None:
        client = clients.get(i) or Client(HTTP_USER_AGENT=f"{UA} #{i}")
        try:
            barrier.wait(timeout=30)
            results[i] = client.post(url, form).status_code
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("max_devices", [1, 3])
def test_simultaneous_claims_exactly_max_win(index, max_devices):
    webinar = make_webinar(
        index,
        title=f"Race {max_devices}",
        slug=f"race-{max_devices}",
        max_devices_per_link=max_devices,
    )
    link = make_link(webinar)
    results = race(link, THREADS)
    assert sorted(set(map(str, results))) == ["302", "403"], results
    assert results.count(302) == max_devices
    assert results.count(403) == THREADS - max_devices
    assert LinkDevice.objects.filter(link=link).count() == max_devices
    claims = AccessEvent.objects.filter(link=link, kind=AccessEventKind.CLAIM)
    assert claims.count() == max_devices


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_form_posted_by_many_browsers_at_once_admits_one(index):
    """Issue 10, finding 1, concurrently: the buyer's own confirm form (its nonce)
    posted at the same instant by the buyer and by 11 other browsers. Whoever
    reaches the row lock first takes the free slot (a link in the wrong hands can
    always be claimed first); the nonce lets no second browser in."""
    webinar = make_webinar(index, title="Replay race", slug="replay-race")
    link = make_link(webinar)
    buyer = Client(HTTP_USER_AGENT=f"{UA} buyer")
    nonce = buyer.get(link_path(link)).context["claim_nonce"]
    form = {"pw_action": "claim", "pw_claim": nonce}
    results = race(link, 12, form=form, clients={0: buyer})
    assert results.count(302) == 1, results
    assert results.count(403) == 11, results
    assert LinkDevice.objects.filter(link=link).count() == 1
