"""Admin forms of the personal links: bulk generation and editing one link."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.widgets import AdminDateTimeInput

from .. import conf
from ..csvutils import read_upload, too_many_lines_message
from ..models import PersonalLink, WebinarPage
from ..parsing import Entry, count_lines, normalize_email, validate_entry

MAX_VALID_FOR_DAYS = 3650


def refuse_over_limit(text: str) -> None:
    """Refuse a list over ``MAX_LINES`` as a whole, before anything is created."""
    limit = int(conf.get_setting("MAX_LINES"))
    count = count_lines(text)
    if count > limit:
        raise ValidationError(too_many_lines_message(count, limit), code="too_many")


def webinar_label(obj: WebinarPage) -> str:
    """A webinar in a chooser: title and start in the webinar's own zone, named
    (an editor abroad otherwise reads the time in the wrong zone)."""
    if obj.starts_at:
        when = obj.local_starts_at.strftime("%Y-%m-%d %H:%M")
        return f"{obj.title} ({when} {obj.tzinfo.key})"
    return obj.title


class WebinarChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return webinar_label(obj)


class GenerateLinksForm(forms.Form):
    """Pick a webinar, paste names or upload a file, optionally set an expiry."""

    webinar = WebinarChoiceField(
        label=_("Webinar"),
        queryset=WebinarPage.objects.none(),
    )
    names = forms.CharField(
        label=_("Participants"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text=_(
            "One person a line: “Anna Nowak”, “Anna Nowak <anna@example.com>” or "
            "“Anna Nowak, anna@example.com”. Blank lines are ignored."
        ),
    )
    file = forms.FileField(
        label=_("…or upload a list"),
        required=False,
        help_text=_("A .txt or .csv file (UTF-8, or Windows-1250 from Excel)."),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".txt,.csv,text/plain,text/csv"}
        ),
    )
    expires_at = forms.DateTimeField(
        label=_("Links expire at"),
        required=False,
        widget=AdminDateTimeInput,
        help_text=_("Leave empty for links that never expire."),
    )
    valid_for_days = forms.IntegerField(
        label=_("…or valid for (days)"),
        required=False,
        min_value=1,
        max_value=MAX_VALID_FOR_DAYS,
    )
    all_or_nothing = forms.BooleanField(
        label=_("Create nothing if any line has an error"),
        required=False,
        help_text=_("Otherwise the valid lines are created and the bad ones listed."),
    )
    # The second step, shown when lines match existing links of the webinar.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    attach_emails = forms.BooleanField(
        label=_("Attach the e-mail addresses to the existing links"),
        required=False,
        help_text=_(
            "Otherwise each of these people gets a second link, and the first one "
            "keeps working."
        ),
    )

    def __init__(self, *args, webinar_queryset=None, confirming=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not confirming:
            # Offered on the confirmation step only, next to the matches it is about.
            del self.fields["attach_emails"]
        if webinar_queryset is None:
            webinar_queryset = WebinarPage.objects.all()
        self.fields["webinar"].queryset = webinar_queryset.order_by(
            "-starts_at", "title"
        )
        # Django rejects a whole text with a NUL in it; the parser reports the line
        # instead, and never lets it reach the database.
        self.fields["names"].validators = []

    def clean(self):
        cleaned = super().clean()
        names = cleaned.get("names") or ""
        upload = cleaned.get("file")
        if upload and names.strip():
            raise ValidationError(_("Paste the names or upload a file, not both."))
        if upload:
            text, error = read_upload(
                upload, int(conf.get_setting("LINKS_MAX_UPLOAD_BYTES"))
            )
            if error:
                self.add_error("file", error)
                return cleaned
            cleaned["text"] = text
        else:
            cleaned["text"] = names
        if not cleaned["text"].strip():
            raise ValidationError(_("Paste at least one name or upload a list."))
        refuse_over_limit(cleaned["text"])

        expires_at, days = cleaned.get("expires_at"), cleaned.get("valid_for_days")
        if expires_at and days:
            raise ValidationError(
                _("Give an expiry date or a number of days, not both.")
            )
        if days:
            expires_at = timezone.now() + dt.timedelta(days=days)
        if expires_at and expires_at <= timezone.now():
            self.add_error("expires_at", _("The expiry date is in the past."))
        cleaned["expires"] = expires_at
        return cleaned


class PersonalLinkEditForm(WagtailAdminModelForm):
    """Editing one link: the same checks as a pasted line, plus e-mail uniqueness."""

    def clean(self):
        cleaned = super().clean()
        if "name" not in cleaned or "email" not in cleaned:
            return cleaned
        outcome = validate_entry(1, "", cleaned["name"], cleaned.get("email") or "")
        if not isinstance(outcome, Entry):
            raise ValidationError(outcome.message)
        cleaned["name"], cleaned["email"] = outcome.name, outcome.email
        normalized = normalize_email(outcome.email)
        if normalized:
            clash = (
                PersonalLink.objects.filter(
                    webinar_id=self.instance.webinar_id, email_normalized=normalized
                )
                .exclude(pk=self.instance.pk)
                .first()
            )
            if clash:
                self.add_error(
                    "email",
                    _("%(name)s already has a link with this e-mail address.")
                    % {"name": clash.name},
                )
        return cleaned

    def save(self, commit=True):
        self.instance.name = self.cleaned_data["name"]
        self.instance.email = self.cleaned_data["email"]
        self.instance.email_normalized = normalize_email(self.instance.email)
        return super().save(commit=commit)
