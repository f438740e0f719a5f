from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailPaidWebinarConfig(AppConfig):
    name = "wagtail_paidwebinar"
    label = "wagtail_paidwebinar"
    verbose_name = _("Paid webinars")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
        from .mailing import schedule

        schedule.connect_signals()
