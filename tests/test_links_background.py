"""Big "Generate links" lists run as a background job with a progress page
(issue 12, item 2): the request returns at once, the result (links, CSV) appears
when the job is done, and a failed job leaves no partial batch."""

from __future__ import annotations

import csv
import io

import django_rq
import pytest
from django.test import Client
from rq import SimpleWorker
from rq.job import Job

from tests.fixtures_links import LINK_PERMS
from tests.fixtures_mailing import wait_for
from tests.utils import admin_url, embedded_queue_config, make_user
from wagtail_paidwebinar.models import LinkBatch, LinkBatchStatus, PersonalLink

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

QUEUE = "paidwebinar-links-background"


def url(name, *args, **kwargs):
    return admin_url(PersonalLink, name, *args, **kwargs)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def names(count: int) -> str:
    return "\n".join(f"Uczestnik {i:05d} <u{i:05d}@example.pl>" for i in range(count))


def generate(client, webinar, text, **extra):
    return client.post(url("generate"), {"webinar": webinar.pk, "names": text, **extra})


def read_csv(response):
    body = b"".join(response.streaming_content) if response.streaming else b""
    body = body or response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8")[1:])))


@pytest.fixture
def editor(db):
    return make_user(
        "links_editor",
        perms=[LINK_PERMS[k] for k in ("view", "add", "change", "url")],
    )


@pytest.fixture
def small_threshold(settings):
    settings.WAGTAIL_PAIDWEBINAR_GENERATE_IN_BACKGROUND_ABOVE = 20


@pytest.fixture
def worker_queue(settings, small_threshold):
    """A queue served by a worker: jobs wait in a fake Redis until work() runs them."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[QUEUE] = {**embedded_queue_config(), "ASYNC": True}
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = QUEUE
    yield django_rq.get_queue(QUEUE)
    rq_settings.QUEUES.pop(QUEUE, None)


def work(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


# --- the in-process queue: the job runs when the request's transaction commits -----


def test_inline_queue_generates_in_the_job_and_shows_the_result(
    editor, webinar, inline_queue, small_threshold
):
    client = login(editor)
    response = generate(client, webinar, names(30) + "\nbad <x@>")
    assert response.status_code == 302
    batch = LinkBatch.objects.get()
    assert batch.status == LinkBatchStatus.DONE
    assert batch.lines == 31 and batch.text == ""  # the list is not kept
    assert batch.created_by == editor
    html = client.get(response["Location"]).content.decode()
    assert "30 new links were created" in html
    assert "1 line has an error" in html
    links = list(PersonalLink.objects.order_by("pk"))
    assert len(links) == 30 and all(x.created_by == editor for x in links)
    rows = read_csv(client.get(response["Location"] + "csv/"))
    assert [r[2] for r in rows[1:]] == [x.get_url() for x in links]


def test_below_the_threshold_nothing_is_queued(editor, webinar, small_threshold):
    response = generate(login(editor), webinar, names(20))
    assert response.status_code == 302
    assert not LinkBatch.objects.exists()
    assert PersonalLink.objects.count() == 20


def test_failed_job_leaves_no_partial_batch_and_says_so(
    editor, webinar, inline_queue, small_threshold, monkeypatch
):
    from wagtail_paidwebinar import actions

    def broken_log(*args, **kwargs):
        # After the links were inserted, inside the generation's transaction.
        assert PersonalLink.objects.count() == 30
        raise RuntimeError("database went away")

    monkeypatch.setattr(actions, "log", broken_log)
    client = login(editor)
    response = generate(client, webinar, names(30))
    assert response.status_code == 302
    assert PersonalLink.objects.count() == 0
    batch = LinkBatch.objects.get()
    assert batch.status == LinkBatchStatus.FAILED and batch.text == ""
    html = client.get(response["Location"]).content.decode()
    assert "Generating the links failed. Nothing was created" in html
    assert "database went away" in html
    assert client.get(response["Location"] + "csv/").status_code == 404
    progress = client.get(response["Location"] + "progress/").json()
    assert progress["finished"] and progress["failed"]


# --- a queue with a worker: progress page, JSON, result when done ------------------


def test_worker_queue_shows_progress_then_the_result(editor, webinar, worker_queue):
    client = login(editor)
    response = generate(client, webinar, names(25))
    assert response.status_code == 302
    assert PersonalLink.objects.count() == 0  # nothing done in the request
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0")
    assert "25 lines are being turned into personal links" in html
    assert "data-pw-progress" in html and "Waiting for a worker" in html
    assert "No worker is listening" in html  # fake Redis: no worker registered
    progress = client.get(response["Location"] + "progress/").json()
    assert progress["status"] == "queued" and not progress["finished"]
    assert progress["queue"]["needs_worker"]
    assert client.get(response["Location"] + "csv/").status_code == 404

    work(worker_queue)
    progress = client.get(response["Location"] + "progress/").json()
    assert progress["finished"]
    html = client.get(response["Location"]).content.decode()
    assert "25 new links were created" in html
    assert len(read_csv(client.get(response["Location"] + "csv/"))) == 26


def test_job_that_disappeared_is_reported_as_failed(editor, webinar, worker_queue):
    client = login(editor)
    response = generate(client, webinar, names(25))
    batch = LinkBatch.objects.get()
    Job.fetch(batch.job_id, connection=worker_queue.connection).delete()
    progress = client.get(response["Location"] + "progress/").json()
    assert progress["failed"] and "stopped before it finished" in progress["error"]
    work(worker_queue)  # nothing left to run; a stray copy would be skipped
    assert PersonalLink.objects.count() == 0


def test_a_job_runs_once(editor, webinar, worker_queue):
    from wagtail_paidwebinar.batches import run_batch

    generate(login(editor), webinar, names(25))
    batch = LinkBatch.objects.get()
    work(worker_queue)
    assert run_batch(batch.pk) == "skipped"
    assert PersonalLink.objects.count() == 25


def test_progress_of_another_user_or_without_permission(editor, webinar, worker_queue):
    client = login(editor)
    response = generate(client, webinar, names(25))
    viewer = login(make_user("viewer", perms=[LINK_PERMS["view"]]))
    denied = viewer.get(response["Location"] + "progress/")
    assert denied.status_code in (302, 403)
    other = login(editor)  # another session: the key means nothing there
    assert other.get(response["Location"] + "progress/").status_code == 302


# --- a real worker on real Redis + PostgreSQL -------------------------------------


@pytest.mark.redis
@pytest.mark.postgres
def test_real_worker_generates_a_big_list(editor, webinar, rq_worker, settings):
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = "default"
    client = login(editor)
    # Above the default threshold (2000 lines).
    response = generate(client, webinar, names(2500))
    assert response.status_code == 302
    assert (
        "being turned into personal links"
        in client.get(response["Location"]).content.decode()
    )
    worker = rq_worker()
    wait_for(
        lambda: client.get(response["Location"] + "progress/").json()["finished"],
        timeout=120,
        interval=0.5,
        message=worker.log(),
    )
    html = client.get(response["Location"]).content.decode()
    assert "2500 new links were created" in html
    assert "Only the first 200 links are listed here" in html
    assert len(read_csv(client.get(response["Location"] + "csv/"))) == 2501
    assert LinkBatch.objects.get().text == ""
