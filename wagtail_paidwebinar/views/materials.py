"""Room materials, downloadable only by visitors who passed the gate: through the
room's own material URLs, and at Wagtail's ``/documents/<id>/<filename>`` through the
``before_serve_document`` hook (:func:`serve_room_document`)."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
)
from django.shortcuts import get_object_or_404, redirect
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from wagtail.documents import get_document_model
from wagtail.documents.models import AbstractDocument, document_served
from wagtail.models import Page, ReferenceIndex

from .. import gate
from ..models import WebinarPage
from ..utils import MAX_PK


def _materials_ids(stream) -> set[int]:
    """Ids of the documents in a stream's materials blocks (read from raw data: no
    queries)."""
    ids: set[int] = set()
    for block in stream.raw_data:
        if block.get("type") != "materials":
            continue
        for item in (block.get("value") or {}).get("documents") or []:
            # ListBlock items are {"type": "item", "value": id, "id": uuid} in the
            # current format, bare ids in the old one.
            value = item.get("value") if isinstance(item, dict) else item
            if isinstance(value, int):
                ids.add(value)
    return ids


def room_document_ids(page: WebinarPage) -> set[int]:
    """Ids of the documents in the room's materials blocks."""
    return _materials_ids(page.room)


def replay_document_ids(page: WebinarPage) -> set[int]:
    """Ids of the documents in the replay's materials blocks."""
    return _materials_ids(page.replay)


def may_download(
    page: WebinarPage, request: HttpRequest, *, replay_only: bool = False
) -> bool:
    """The gate's verdict on this browser for ``page`` (editors always may).

    ``replay_only``: the document belongs to the replay and not to the room, so it
    is served only while the replay is (after the end, until ``replay_until``), on
    top of the gate's own rules.
    """
    for restriction in page.get_view_restrictions():
        if not restriction.accept_request(request):
            return False
    if gate.room_visible(page, request) and (
        not replay_only or page.is_replay_available()
    ):
        return True
    user = getattr(request, "user", None)
    return bool(
        user is not None
        and user.is_authenticated
        and page.permissions_for_user(user).can_edit()
    )


def serve_material(
    request: HttpRequest, page_id: int, document_id: int
) -> HttpResponse:
    """Send one document of the room to a visitor the gate admits; 404 otherwise.

    A refusal is a 404 (not 403) so the URL says nothing about which documents exist.
    """
    if max(page_id, document_id) > MAX_PK:
        raise Http404  # beyond any primary key; SQLite would raise OverflowError
    page = get_object_or_404(WebinarPage.objects.live(), pk=page_id)
    in_room = document_id in room_document_ids(page)
    if not in_room and document_id not in replay_document_ids(page):
        raise Http404
    if not may_download(page, request, replay_only=not in_room):
        raise Http404
    document = get_object_or_404(get_document_model(), pk=document_id)
    return document_response(document, request)


def document_response(document: AbstractDocument, request: HttpRequest) -> HttpResponse:
    """The file of ``document`` as a private download (never cached, not indexed)."""
    try:
        handle = document.file.open("rb")
    except (OSError, ValueError) as exc:
        raise Http404 from exc
    document_served.send(sender=type(document), instance=document, request=request)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=document.filename,
        content_type=document.content_type or "application/octet-stream",
    )
    add_never_cache_headers(response)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    # As Wagtail's own document view: no script runs from a served file.
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def webinar_uses(document: AbstractDocument) -> list[tuple[WebinarPage, bool]]:
    """The webinars whose room or replay uses ``document`` (a materials block, or a
    link in the text), each with whether only its replay does, read from Wagtail's
    reference index: one query, and one more only when some page uses the document.

    The index follows what pages save: a document first placed in a draft room is
    not a room document until that room is published (README, "Private documents").
    """
    rows = list(
        ReferenceIndex.get_references_to(document)
        .filter(
            Q(model_path__startswith="room.") | Q(model_path__startswith="replay."),
            base_content_type=ContentType.objects.get_for_model(Page),
        )
        .values_list("object_id", "model_path")
        .distinct()
    )
    if not rows:
        return []
    in_room = {pk for pk, path in rows if path.startswith("room.")}
    # Only WebinarPage has the gated "room" and "replay"; another page type's field
    # of that name matches no row here.
    pages = WebinarPage.objects.filter(pk__in={pk for pk, _path in rows})
    return [(page, str(page.pk) not in in_room) for page in pages]


def webinars_using(document: AbstractDocument) -> list[WebinarPage]:
    """The webinars whose room or replay uses ``document`` (see webinar_uses)."""
    return [page for page, _replay_only in webinar_uses(document)]


def serve_room_document(
    document: AbstractDocument, request: HttpRequest
) -> HttpResponse | None:
    """Wagtail's ``before_serve_document``: a document the room of some webinar uses
    is served only to a browser that webinar's gate admits (or an editor of it);
    others get 403. ``None`` lets Wagtail serve any other document."""
    webinars = webinar_uses(document)
    if not webinars:
        return None
    admitting = [
        page
        for page, replay_only in webinars
        if may_download(page, request, replay_only=replay_only)
    ]
    if not admitting:
        response: HttpResponse = HttpResponseForbidden(
            _("This document is available to the participants of a webinar."),
            content_type="text/plain; charset=utf-8",
        )
    else:
        for page in admitting:
            if document.pk in room_document_ids(page) | replay_document_ids(page):
                # To the room's own material URL, whose private, never-cached
                # download this hook cannot return itself: Wagtail ignores a
                # streaming response from before_serve_document, and its own view
                # sends no Cache-Control for a shared cache to respect.
                response = redirect(
                    "wagtail_paidwebinar:material", page.pk, document.pk
                )
                break
        else:
            # Linked from the room's text only (no material URL): Wagtail serves it.
            return None
    add_never_cache_headers(response)
    return response
