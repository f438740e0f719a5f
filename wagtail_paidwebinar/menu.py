"""The plugin's one admin menu group, "Webinars".

Its items come from the ``register_paidwebinar_menu_item`` hook, the way Wagtail's
own Settings menu is built, so each part adds its entry from where it lives:
personal links (the snippet viewset in ``viewsets.py``, ``menu_hook``), mailings,
subscribers, lists and signatures (``modeladmin.py``, the one home of
wagtail-modeladmin) and attendance (below). A submenu with no item the user may
see is hidden, so a user without any of the permissions sees no group at all.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import Menu, MenuItem, SubmenuMenuItem

from .permissions import can_view_any_attendance

MENU_HOOK = "register_paidwebinar_menu_item"

#: Order of the entries inside the group.
ORDER = {
    "links": 100,
    "mailings": 200,
    "subscribers": 300,
    "lists": 400,
    "signatures": 500,
    "attendance": 600,
}


def webinars_menu_item() -> SubmenuMenuItem:
    """The "Webinars" group (registered on ``register_admin_menu_item``)."""
    return SubmenuMenuItem(
        _("Webinars"),
        Menu(register_hook_name=MENU_HOOK),
        name="webinars",
        icon_name="media",
        order=250,
    )


class AttendanceMenuItem(MenuItem):
    def is_shown(self, request) -> bool:
        return can_view_any_attendance(request.user)


def attendance_menu_item() -> MenuItem:
    """The "Attendance" entry: the webinars whose attendance the user may see."""
    return AttendanceMenuItem(
        _("Attendance"),
        reverse("wagtail_paidwebinar_attendance_index"),
        name="attendance",
        icon_name="group",
        order=ORDER["attendance"],
    )
