"""The public unsubscribe page (List-Unsubscribe target, RFC 8058 one-click)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .. import mailing
from ..parsing import mask_email

TEMPLATE = "wagtail_paidwebinar/unsubscribe.html"


def _respond(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    response = TemplateResponse(request, TEMPLATE, context, status=status)
    # The URL carries a token: keep it out of caches, Referer headers and indexes.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# CSRF exemption is deliberate. RFC 8058 one-click unsubscribe is a POST sent by the
# mail provider's servers with the body "List-Unsubscribe=One-Click" and no cookies,
# so a CSRF cookie/token can never be present. The opaque per-subscriber token in the
# URL is the authenticator: a forged cross-site POST would need that secret, and the
# worst it could do is unsubscribe the person the token was sent to. The view changes
# nothing else and is idempotent.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET: confirm page. POST (a click on it, or one-click): unsubscribe."""
    subscriber = mailing.subscriber_for_unsubscribe_token(token)
    if subscriber is None:
        return _respond(request, {"state": "invalid"}, status=404)
    context = {"email": mask_email(subscriber.email)}
    if request.method == "POST":
        mailing.unsubscribe(subscriber)
        return _respond(request, {**context, "state": "done"})
    state = "confirm" if subscriber.subscribed else "already"
    return _respond(request, {**context, "state": state})
