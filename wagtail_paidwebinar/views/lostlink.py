"""The public "Lost your link?" form of a webinar (lostlink.py does the work)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from .. import lostlink
from ..gate import client_ip

TEMPLATE = "wagtail_paidwebinar/lost_link.html"
EMAIL_FIELD = "email"


def _respond(
    request: HttpRequest, context: dict, status: int = 200, retry_after: int = 0
) -> HttpResponse:
    context = {
        "email_field": EMAIL_FIELD,
        "hide_lost_link": True,
        "room_visible": False,
        **context,
    }
    response = TemplateResponse(request, TEMPLATE, context, status=status)
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def lost_link_view(request: HttpRequest, page_id: int) -> HttpResponse:
    """GET: the form. POST: the same answer ("if it is yours, it is on its way")
    for every well-formed address; the lookup and the e-mail happen in a job."""
    page = lostlink.webinar_for(page_id)
    if page is None:
        return _respond(request, {"state": "no_webinar"}, status=404)
    page = page.specific
    context = {"page": page, "self": page, "state": "form"}
    if request.method != "POST":
        return _respond(request, context)
    state = lostlink.client_allowed(client_ip(request))
    if state.blocked:
        return _respond(
            request, {**context, "state": "throttled"}, 429, state.retry_after
        )
    address = lostlink.clean_address(str(request.POST.get(EMAIL_FIELD, ""))[:1000])
    if address is None:
        return _respond(request, {**context, "error": True}, status=400)
    state = lostlink.request_resend(page, address)
    if state.blocked:
        return _respond(
            request, {**context, "state": "throttled"}, 429, state.retry_after
        )
    return _respond(request, {**context, "state": "sent"})
