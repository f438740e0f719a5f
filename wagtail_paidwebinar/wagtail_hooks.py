"""Registrations only; the logic lives in access.py, actions.py, viewsets.py,
modeladmin.py and mailing/."""

from wagtail import hooks
from wagtail.admin import messages
from wagtail.snippets.models import register_snippet
from wagtail_modeladmin.options import modeladmin_register

from . import actions, gate, menu, moves, payments
from .mailing import invitations
from .mailing import schedule as webinar_schedule
from .modeladmin import InvitationsGroup, invitation_buttons
from .models import WebinarPage
from .models.pages import public_room_message
from .views import attendance, materials, payments_admin
from .views import schedule as schedule_views
from .viewsets import (
    PersonalLinkDeleteBulkAction,
    PersonalLinkViewSet,
    RevokeBulkAction,
)

# --- the "Webinars" admin menu group (menu.py) --------------------------------------

hooks.register("register_admin_menu_item", menu.webinars_menu_item)
hooks.register(menu.MENU_HOOK, menu.attendance_menu_item)

# --- personal links admin (viewsets.py) -------------------------------------------

register_snippet(PersonalLinkViewSet)
hooks.register("register_bulk_action", RevokeBulkAction)
# order=1: scanned after wagtail.snippets' own bulk delete, so ours wins for links.
hooks.register("register_bulk_action", PersonalLinkDeleteBulkAction, order=1)


@hooks.register("register_log_actions")
def register_link_log_actions(log_actions):
    actions.register_log_actions(log_actions)
    invitations.register_log_actions(log_actions)
    payments.register_log_actions(log_actions)
    moves.register_log_actions(log_actions)
    webinar_schedule.register_log_actions(log_actions)


# --- the gate (access.py / gate.py) -----------------------------------------------


@hooks.register("on_serve_page")
def paidwebinar_gate(callback):
    """Every WebinarPage request goes through the gate; other pages pass untouched."""

    def inner(page, request, serve_args, serve_kwargs):
        if not isinstance(page, WebinarPage):
            return callback(page, request, serve_args, serve_kwargs)
        return gate.serve_webinar(page, request, callback, serve_args, serve_kwargs)

    return inner


@hooks.register("after_publish_page")
def paidwebinar_public_room_warning(request, page):
    """Publishing a room anyone can enter is allowed, but never unnoticed."""
    specific = page.specific
    if isinstance(specific, WebinarPage) and specific.room_is_public():
        messages.warning(request, public_room_message(specific))


@hooks.register("before_serve_document")
def paidwebinar_room_documents(document, request):
    """A room's documents at Wagtail's document URL go through the gate too."""
    return materials.serve_room_document(document, request)


# --- attendance (views/attendance.py) ----------------------------------------------


@hooks.register("register_admin_urls")
def paidwebinar_attendance_urls():
    return attendance.urlpatterns


@hooks.register("register_page_header_buttons")
def paidwebinar_attendance_header_button(page, user, view_name=None, next_url=None):
    return attendance.attendance_buttons(page, user, priority=45)


@hooks.register("register_page_listing_more_buttons")
def paidwebinar_attendance_more_button(page, user, next_url=None):
    return attendance.attendance_buttons(page, user, priority=45)


# --- invitations: subscribers and mailings (modeladmin.py, mailing/) ---------------

modeladmin_register(InvitationsGroup)


@hooks.register("register_page_header_buttons")
def paidwebinar_invitation_header_button(page, user, view_name=None, next_url=None):
    return invitation_buttons(page, user, priority=50)


@hooks.register("register_page_listing_more_buttons")
def paidwebinar_invitation_more_button(page, user, next_url=None):
    return invitation_buttons(page, user, priority=50)


# --- payments: webhook deliveries and "test the webhook" (views/payments_admin.py) --


@hooks.register("register_admin_urls")
def paidwebinar_payments_urls():
    return payments_admin.urlpatterns


@hooks.register("register_admin_menu_item")
def paidwebinar_payments_menu_item():
    return payments_admin.menu_item()


# --- reminders, schedule changes, cancellation (mailing/schedule.py) ---------------


@hooks.register("after_publish_page")
def paidwebinar_offer_schedule_notice(request, page):
    """A published change of start, duration or timezone offers "notify
    participants" (reminders are re-planned by the page_published signal)."""
    schedule_views.after_publish(request, page)


@hooks.register("register_admin_urls")
def paidwebinar_schedule_urls():
    return schedule_views.urlpatterns


@hooks.register("register_page_header_buttons")
def paidwebinar_cancel_header_button(page, user, view_name=None, next_url=None):
    return schedule_views.cancel_buttons(page, user, priority=60)
