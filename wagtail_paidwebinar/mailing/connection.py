"""The one place the plugin gets an e-mail connection.

Django 6.1 configures e-mail with ``MAILERS`` and hands out connections through
``django.core.mail.mailers``; it deprecates ``get_connection()`` and the ``EMAIL_*``
settings. Before 6.1 only ``get_connection()`` exists. Either way the result is a
new, unopened backend instance of the site's default mailer (on 6.1 a site without
``MAILERS`` still gets one built from its ``EMAIL_*`` settings, by Django itself).
"""

from __future__ import annotations

import django
from django.core.mail.backends.base import BaseEmailBackend

MAILERS_API = django.VERSION >= (6, 1)


def new_connection() -> BaseEmailBackend:
    """A new connection of the default mailer that raises on failure (the
    callers sort failures themselves)."""
    if MAILERS_API:
        from django.core.mail import mailers

        return mailers.default
    from django.core.mail import get_connection

    return get_connection(fail_silently=False)
