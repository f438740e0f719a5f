"""Room materials, downloadable only by visitors who passed the gate: through the
room's own material URLs, and at Wagtail's ``/documents/<id>/<filename>`` through the
``before_serve_document`` hook (:func:`serve_room_document`)."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
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

_MAX_ID = 2**63 - 1


def room_document_ids(page: WebinarPage) -> set[int]:
    """Ids of the documents in the room's materials blocks (read from raw data: no
    queries)."""
    ids: set[int] = set()
    for block in page.room.raw_data:
        if block.get("type") != "materials":
            continue
        for item in (block.get("value") or {}).get("documents") or []:
            # ListBlock items are {"type": "item", "value": id, "id": uuid} in the
            # current format, bare ids in the old one.
            value = item.get("value") if isinstance(item, dict) else item
            if isinstance(value, int):
                ids.add(value)
    return ids


def may_download(page: WebinarPage, request: HttpRequest) -> bool:
    """The gate's verdict on this browser for ``page`` (editors always may)."""
    for restriction in page.get_view_restrictions():
        if not restriction.accept_request(request):
            return False
    if gate.room_visible(page, request):
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
    if max(page_id, document_id) > _MAX_ID:
        raise Http404  # beyond any primary key; SQLite would raise OverflowError
    page = get_object_or_404(WebinarPage.objects.live(), pk=page_id)
    if document_id not in room_document_ids(page) or not may_download(page, request):
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


def webinars_using(document: AbstractDocument) -> list[WebinarPage]:
    """The webinars whose room uses ``document`` (a materials block, or a link in the
    room's text), read from Wagtail's reference index: one query, and one more only
    when the document is used by some page's room.

    The index follows what pages save: a document first placed in a draft room is
    not a room document until that room is published (README, "Private documents").
    """
    page_ids = list(
        ReferenceIndex.get_references_to(document)
        .filter(
            base_content_type=ContentType.objects.get_for_model(Page),
            model_path__startswith="room.",
        )
        .values_list("object_id", flat=True)
        .distinct()
    )
    if not page_ids:
        return []
    # Only WebinarPage has the gated "room"; another page type's field of that name
    # matches no row here.
    return list(WebinarPage.objects.filter(pk__in=page_ids))


def serve_room_document(
    document: AbstractDocument, request: HttpRequest
) -> HttpResponse | None:
    """Wagtail's ``before_serve_document``: a document the room of some webinar uses
    is served only to a browser that webinar's gate admits (or an editor of it);
    others get 403. ``None`` lets Wagtail serve any other document."""
    webinars = webinars_using(document)
    if not webinars:
        return None
    admitting = [page for page in webinars if may_download(page, request)]
    if not admitting:
        response: HttpResponse = HttpResponseForbidden(
            _("This document is available to the participants of a webinar."),
            content_type="text/plain; charset=utf-8",
        )
    else:
        for page in admitting:
            if document.pk in room_document_ids(page):
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
