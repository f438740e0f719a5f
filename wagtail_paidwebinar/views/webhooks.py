"""The payment webhooks over HTTP: method, signature header and raw body in, JSON
out. Everything else is in :mod:`wagtail_paidwebinar.webhooks` and
:mod:`wagtail_paidwebinar.payments`."""

from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .. import payments
from .. import webhooks as handlers


def _respond(request: HttpRequest, enabled: bool, handler, header: str):
    # 404 before anything else: an endpoint that is switched off does not exist.
    if not enabled:
        raise Http404
    if request.method != "POST":
        response = JsonResponse({"error": "POST only"}, status=405)
        response["Allow"] = "POST"
        return response
    result = handler(request.body, request.headers.get(header))
    return JsonResponse(result.data, status=result.status)


@csrf_exempt  # authenticated by the signature instead of a CSRF token
@never_cache
def purchase_webhook(request: HttpRequest) -> JsonResponse:
    """``wagtail_paidwebinar:purchase_webhook`` (README: "A shop calls us")."""
    return _respond(
        request,
        bool(payments.purchase_secrets()),
        handlers.handle_purchase_webhook,
        payments.SIGNATURE_HEADER,
    )


@csrf_exempt  # authenticated by Stripe's signature instead of a CSRF token
@never_cache
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """``wagtail_paidwebinar:stripe_webhook`` (README: "Stripe Payment Links")."""
    return _respond(
        request,
        bool(payments.stripe_secrets()),
        handlers.handle_stripe_webhook,
        "Stripe-Signature",
    )
