"""Registrations only; the logic lives in access.py, actions.py, viewsets.py,
modeladmin.py and mailing/."""

from wagtail import hooks  # noqa: F401

# --- personal links admin (viewsets.py) -------------------------------------------

# --- the gate (access.py / gate.py) -----------------------------------------------

# --- invitations: subscribers and mailings (modeladmin.py, mailing/) ---------------
