"""Public URLs of the plugin (include them under any prefix, e.g. "webinars/")."""

from django.urls import path

from .views import lostlink, materials, webhooks
from .views.unsubscribe import unsubscribe_view

app_name = "wagtail_paidwebinar"

urlpatterns: list = [
    # The gate: room materials, served only to visitors the gate admits.
    path(
        "<int:page_id>/materials/<int:document_id>/",
        materials.serve_material,
        name="material",
    ),
    # Self-service: a participant asks for their invitation again.
    path("lost-link/<int:page_id>/", lostlink.lost_link_view, name="lost_link"),
    # Invitations: List-Unsubscribe target (GET confirm, POST / RFC 8058 one-click).
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
    # Payments: a shop's signed purchase/refund, and Stripe's events (payments.py).
    path("hooks/purchase/", webhooks.purchase_webhook, name="purchase_webhook"),
    path("hooks/stripe/", webhooks.stripe_webhook, name="stripe_webhook"),
]
