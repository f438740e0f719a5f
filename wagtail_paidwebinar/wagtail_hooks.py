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

# --- invitations: subscribers and mailings (modeladmin.py, mailing/) ---------------
