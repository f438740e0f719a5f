from django.core import checks

from . import conf


@checks.register()
def check_settings(app_configs, **kwargs):
    try:
        conf.check()
    except conf.PaidWebinarImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="wagtail_paidwebinar.E001")]
    return []
