"""Admin: the payment webhooks' delivery log and "Test the webhook".

Read-only pages; the rules are in :mod:`..permissions` and :mod:`..payments`.
"""

from __future__ import annotations

import json
import shlex
import time

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.menu import MenuItem
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from .. import payments
from ..models import WebhookDelivery, WebinarPage
from ..permissions import can_test_webhook, can_view_payments
from ..utils import absolute_url

PER_PAGE = 50
EXAMPLE_EMAIL = "buyer@example.com"


def mask(secret: str) -> str:
    """``secret`` shown without giving it away: its first four characters."""
    return f"{secret[:4]}{'•' * 8} ({len(secret)})" if secret else ""


def _endpoint(name: str) -> str:
    try:
        return absolute_url(reverse(f"wagtail_paidwebinar:{name}"))
    except NoReverseMatch:
        return ""


def example_request(webinar: WebinarPage | None, secret: str, timestamp: int) -> dict:
    """The exact signed request a shop sends for a sale of ``webinar``: endpoint,
    body, header and ready-to-run curl and Python (the secret read from the
    environment in Python, never printed)."""
    url = _endpoint("purchase_webhook")
    body = json.dumps(
        {
            "event": "purchase",
            "webinar": webinar.pk if webinar else 0,
            "name": "Anna Nowak",
            "email": EXAMPLE_EMAIL,
            "reference": f"test-{timestamp}",
            "send_invitation": True,
        }
    )
    header = payments.sign(body.encode(), secret, timestamp) if secret else ""
    curl = " \\\n  ".join(
        [
            f"curl -X POST {shlex.quote(url)}",
            "-H 'Content-Type: application/json'",
            shlex.quote(f"{payments.SIGNATURE_HEADER}: {header}"),
            f"--data-raw {shlex.quote(body)}",
        ]
    )
    python = PYTHON_EXAMPLE % {"url": url, "header": payments.SIGNATURE_HEADER}
    return {"url": url, "body": body, "header": header, "curl": curl, "python": python}


PYTHON_EXAMPLE = """\
import hashlib, hmac, json, os, time, urllib.request

SECRET = os.environ["PAIDWEBINAR_WEBHOOK_SECRET"]  # never in your code


def notify_sale(webinar, name, email, order_id, event="purchase"):
    body = json.dumps({
        "event": event, "webinar": webinar, "name": name, "email": email,
        "reference": order_id, "send_invitation": True,
    }).encode()
    t = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256)
    request = urllib.request.Request(
        "%(url)s",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "%(header)s": f"t={t},v1={mac.hexdigest()}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)  # {"link": "...", "created": ..., "invitation": ...}
"""


class PaymentsAdminView(WagtailAdminTemplateMixin, TemplateView):
    header_icon = "list-ul"
    allowed = staticmethod(can_view_payments)

    def dispatch(self, request, *args, **kwargs):
        if not self.allowed(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["deliveries_url"] = reverse("wagtail_paidwebinar_payments_deliveries")
        context["can_test"] = can_test_webhook(self.request.user)
        context["test_url"] = reverse("wagtail_paidwebinar_payments_test")
        return context


class DeliveryListView(PaymentsAdminView):
    """Every delivery to the payment webhooks, newest first."""

    template_name = "wagtail_paidwebinar/admin/payments/deliveries.html"
    page_title = _("Payment webhooks")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        deliveries = WebhookDelivery.objects.select_related("webinar", "link")
        page = Paginator(deliveries, PER_PAGE).get_page(self.request.GET.get("p"))
        context.update(
            page=page,
            purchase_on=bool(payments.purchase_secrets()),
            stripe_on=bool(payments.stripe_secrets()),
        )
        return context


class WebhookTestView(PaymentsAdminView):
    """The exact signed request a shop must send, computed with the configured
    secret (shown masked); the signature shown is real for five minutes."""

    template_name = "wagtail_paidwebinar/admin/payments/test.html"
    page_title = _("Test the webhook")
    allowed = staticmethod(can_test_webhook)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        webinars = WebinarPage.objects.order_by("-starts_at", "title")
        chosen = self.request.GET.get("webinar", "")
        webinar = None
        if chosen.isascii() and chosen.isdigit() and len(chosen) < 19:
            webinar = webinars.filter(pk=int(chosen)).first()
        webinar = webinar or webinars.first()
        secrets = payments.purchase_secrets()
        timestamp = int(time.time())
        context.update(
            webinars=webinars[:200],
            webinar=webinar,
            secrets=[mask(s) for s in secrets],
            example=example_request(webinar, secrets[0] if secrets else "", timestamp),
            tolerance_minutes=payments.TOLERANCE_SECONDS // 60,
            example_email=EXAMPLE_EMAIL,
            stripe_url=_endpoint("stripe_webhook"),
            stripe_secrets=[mask(s) for s in payments.stripe_secrets()],
        )
        return context


urlpatterns = [
    path(
        "paidwebinar/payments/",
        DeliveryListView.as_view(),
        name="wagtail_paidwebinar_payments_deliveries",
    ),
    path(
        "paidwebinar/payments/test/",
        WebhookTestView.as_view(),
        name="wagtail_paidwebinar_payments_test",
    ),
]


class PaymentsMenuItem(MenuItem):
    def is_shown(self, request):
        return can_view_payments(request.user)


def menu_item() -> MenuItem:
    return PaymentsMenuItem(
        _("Payment webhooks"),
        reverse("wagtail_paidwebinar_payments_deliveries"),
        icon_name="list-ul",
        order=260,
    )
