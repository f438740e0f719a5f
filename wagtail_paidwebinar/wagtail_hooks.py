"""Registrations only; the logic lives in access.py, actions.py, viewsets.py,
modeladmin.py and mailing/."""

from wagtail import hooks  # noqa: F401

# --- personal links admin (viewsets.py) -------------------------------------------


@hooks.register("register_log_actions")
def register_link_log_actions(actions):
    from .actions import register_log_actions as register

    register(actions)


def _register_links_admin():
    from wagtail.snippets.models import register_snippet

    from .viewsets import PersonalLinkViewSet, RevokeBulkAction

    register_snippet(PersonalLinkViewSet)
    hooks.register("register_bulk_action", RevokeBulkAction)


_register_links_admin()


# --- the gate (access.py / gate.py) -----------------------------------------------


@hooks.register("on_serve_page")
def paidwebinar_gate(callback):
    """Every WebinarPage request goes through the gate; other pages pass untouched."""

    def inner(page, request, serve_args, serve_kwargs):
        from . import gate
        from .models import WebinarPage

        if not isinstance(page, WebinarPage):
            return callback(page, request, serve_args, serve_kwargs)
        return gate.serve_webinar(page, request, callback, serve_args, serve_kwargs)

    return inner


@hooks.register("register_admin_urls")
def paidwebinar_attendance_urls():
    from .views.attendance import urlpatterns

    return urlpatterns


@hooks.register("register_page_header_buttons")
def paidwebinar_attendance_header_button(page, user, view_name=None, next_url=None):
    from .views.attendance import attendance_buttons

    return attendance_buttons(page, user, priority=45)


@hooks.register("register_page_listing_more_buttons")
def paidwebinar_attendance_more_button(page, user, next_url=None):
    from .views.attendance import attendance_buttons

    return attendance_buttons(page, user, priority=45)


# --- invitations: subscribers and mailings (modeladmin.py, mailing/) ---------------


def _register_invitations() -> None:
    from wagtail_modeladmin.options import modeladmin_register

    from .modeladmin import InvitationsGroup

    modeladmin_register(InvitationsGroup)


_register_invitations()


@hooks.register("register_page_header_buttons")
def paidwebinar_invitation_header_button(page, user, view_name=None, next_url=None):
    from .modeladmin import invitation_buttons

    return invitation_buttons(page, user, priority=50)


@hooks.register("register_page_listing_more_buttons")
def paidwebinar_invitation_more_button(page, user, next_url=None):
    from .modeladmin import invitation_buttons

    return invitation_buttons(page, user, priority=50)
