"""Admin listings' item counts as whole translated plurals.

Wagtail's paginator labels a listing "<count> <verbose_name_plural>", which cannot
be right in Polish: "5 linki osobiste" must be "5 linków osobistych" (after 5 the
noun and its adjective take the genitive plural). Each model here gets its own
ngettext sentence, with all four Polish plural forms.
"""

from __future__ import annotations

from django.utils.functional import cached_property
from django.utils.translation import ngettext
from wagtail.admin.paginator import WagtailPaginator


def count_label(model_name: str, count: int) -> str | None:
    """ "<count> <noun>" for the listings of this plugin, or None for others."""
    if model_name == "personallink":
        text = ngettext("%(count)s personal link", "%(count)s personal links", count)
    elif model_name == "subscriber":
        text = ngettext("%(count)s subscriber", "%(count)s subscribers", count)
    elif model_name == "subscriberlist":
        text = ngettext(
            "%(count)s subscriber list", "%(count)s subscriber lists", count
        )
    elif model_name == "signature":
        text = ngettext("%(count)s signature", "%(count)s signatures", count)
    elif model_name == "mailing":
        text = ngettext("%(count)s mailing", "%(count)s mailings", count)
    else:
        return None
    return text % {"count": count}


class CountedPaginator(WagtailPaginator):
    @cached_property
    def items_count_label(self):
        model = self.model
        label = count_label(model._meta.model_name, self.count) if model else None
        return label if label is not None else super().items_count_label
