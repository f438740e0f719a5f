"""E-mail settings in the form the installed Django wants: ``MAILERS`` on Django 6.1
and later (which deprecates the ``EMAIL_*`` settings), ``EMAIL_*`` before.

``mail_settings(backend, host=..., port=...)`` returns the settings to define, named by
MAILERS' option names; the tests use it too to switch the backend on either Django.
"""

import django

MAILERS_API = django.VERSION >= (6, 1)

# MAILERS option -> the EMAIL_* setting it replaces.
EMAIL_SETTING = {
    "host": "EMAIL_HOST",
    "port": "EMAIL_PORT",
    "username": "EMAIL_HOST_USER",
    "password": "EMAIL_HOST_PASSWORD",
    "use_tls": "EMAIL_USE_TLS",
    "use_ssl": "EMAIL_USE_SSL",
    "timeout": "EMAIL_TIMEOUT",
    "file_path": "EMAIL_FILE_PATH",
}


def mail_settings(backend: str, **options) -> dict:
    """``{"MAILERS": {"default": ...}}`` on Django 6.1+, else ``EMAIL_BACKEND`` and
    one ``EMAIL_*`` setting per option."""
    if MAILERS_API:
        return {"MAILERS": {"default": {"BACKEND": backend, "OPTIONS": options}}}
    return {
        "EMAIL_BACKEND": backend,
        **{EMAIL_SETTING[name]: value for name, value in options.items()},
    }
