"""Public URLs of the plugin (include them under any prefix, e.g. "webinars/")."""

app_name = "wagtail_paidwebinar"

urlpatterns: list = []
