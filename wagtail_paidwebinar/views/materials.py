"""Room materials, downloadable only by visitors who passed the gate."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import add_never_cache_headers
from wagtail.documents import get_document_model
from wagtail.documents.models import document_served

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
