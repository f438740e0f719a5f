"""Registrations only; the logic lives in access.py, actions.py, viewsets.py,
modeladmin.py and mailing/."""

from wagtail import hooks  # noqa: F401

# --- personal links admin (viewsets.py) -------------------------------------------


@hooks.register("register_log_actions")
def register_link_log_actions(actions):
    from .actions import register_log_actions as register

    register(actions)


# --- the gate (access.py / gate.py) -----------------------------------------------

# --- invitations: subscribers and mailings (modeladmin.py, mailing/) ---------------
