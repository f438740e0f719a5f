"""Webinar page types: a public teaser and a private room on one page."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    HelpPanel,
    MultiFieldPanel,
    ObjectList,
    TabbedInterface,
)
from wagtail.api import APIField
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Page
from wagtail.search import index

from .. import conf
from ..blocks import ReplayBlock, RoomBlock
from ..validators import (
    parse_reminder_offsets,
    timezone_choices,
    validate_reminder_offsets,
    validate_timezone,
)


def default_timezone() -> str:
    return conf.get_setting("DEFAULT_TIMEZONE") or settings.TIME_ZONE or "UTC"


class TimezoneSelect(FieldPanel):
    """A FieldPanel offering every IANA timezone in a select."""

    def get_form_options(self):
        from django import forms

        options = super().get_form_options()
        options.setdefault("widgets", {})[self.field_name] = forms.Select(
            choices=timezone_choices()
        )
        return options


class WebinarIndexPage(Page):
    intro = RichTextField(_("introduction"), blank=True)

    subpage_types = ["wagtail_paidwebinar.WebinarPage"]
    content_panels = [*Page.content_panels, FieldPanel("intro")]
    search_fields = [*Page.search_fields, index.SearchField("intro")]
    api_fields = [APIField("intro")]
    template = "wagtail_paidwebinar/webinar_index_page.html"

    class Meta:
        verbose_name = _("webinar index page")
        verbose_name_plural = _("webinar index pages")

    def webinars(self) -> list[WebinarPage]:
        """Live webinars: upcoming and running first (soonest first), then past ones
        (most recent first)."""
        now = timezone.now()
        pages = list(WebinarPage.objects.child_of(self).live().select_related("image"))
        upcoming = sorted(
            (p for p in pages if p.ends_at >= now), key=lambda p: p.starts_at
        )
        past = sorted(
            (p for p in pages if p.ends_at < now),
            key=lambda p: p.starts_at,
            reverse=True,
        )
        return upcoming + past

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        paginator = Paginator(self.webinars(), conf.get_setting("INDEX_PAGE_SIZE"))
        page_obj = paginator.get_page(request.GET.get("page"))
        context.update(
            paginator=paginator,
            page_obj=page_obj,
            webinars=page_obj.object_list,
            now=timezone.now(),
        )
        return context


def public_room_message(page: WebinarPage) -> str:
    """The warning an editor gets on publishing a public room."""
    return str(
        _(
            "“%(title)s” is published with link sharing on and no room password: "
            "anyone with the page address gets into the room."
        )
        % {"title": page.title}
    )


class PublicRoomWarningPanel(HelpPanel):
    """A warning on the Access tab, shown only while the room is public."""

    def __init__(self, **kwargs):
        # Lazy: translated when the editor's page renders, in their language.
        kwargs.setdefault(
            "content",
            format_lazy(
                '<p id="pw-public-room-warning">{}</p>',
                _(
                    "This room is public: link sharing is on and there is no room "
                    "password, so anyone with the page address gets in. Set a "
                    "password or turn link sharing off to admit only your "
                    "participants."
                ),
            ),
        )
        kwargs.setdefault("classname", "help-block help-warning")
        super().__init__(**kwargs)

    class BoundPanel(HelpPanel.BoundPanel):
        def is_shown(self) -> bool:
            return self.instance.room_is_public() and super().is_shown()


class ScheduleStatusPanel(HelpPanel):
    """The next reminder ("Next reminder: ..., to N people" or "Reminders are
    off"), a cancellation, and a schedule change participants were not told of.
    Rendered by a template tag: the numbers come from mailing/reminders.py."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "template", "wagtail_paidwebinar/admin/schedule_status_panel.html"
        )
        super().__init__(**kwargs)

    class BoundPanel(HelpPanel.BoundPanel):
        def is_shown(self) -> bool:
            return bool(self.instance.pk) and super().is_shown()


class WebinarPage(Page):
    # --- public teaser -------------------------------------------------------------
    intro = RichTextField(
        _("teaser"),
        blank=True,
        help_text=_("Public: what, who and for whom. Everyone sees it."),
    )
    starts_at = models.DateTimeField(_("starts at"))
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60 * 7)],
    )
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        default=default_timezone,
        validators=[validate_timezone],
        help_text=_("IANA timezone in which the start time is announced."),
    )
    presenter = models.CharField(_("presenter"), max_length=255, blank=True)
    image = models.ForeignKey(
        "wagtailimages.Image",
        verbose_name=_("image"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cta_url = models.URLField(
        _("call to action URL"),
        blank=True,
        help_text=_("Where people buy access, e.g. your shop's product page."),
    )
    cta_label = models.CharField(
        _("call to action label"),
        max_length=100,
        blank=True,
        help_text=_('Shown on the button; empty means "Buy access".'),
    )

    # --- private room (never indexed, never in the API) --------------------------
    room = StreamField(
        RoomBlock(),
        verbose_name=_("room"),
        blank=True,
        help_text=_("Private: shown only to people who passed the gate."),
    )

    # --- access -------------------------------------------------------------------
    room_password = models.CharField(
        _("room password"),
        max_length=128,
        blank=True,
        help_text=_(
            "Asked on top of the personal link. Leave blank for none. It is sent to "
            "participants, so do not reuse a password of yours."
        ),
    )
    allow_link_sharing = models.BooleanField(
        _("allow link sharing"),
        default=False,
        help_text=_(
            "When on, the page address plus the room password admits anyone. "
            "When off, only personal links admit."
        ),
    )
    max_devices_per_link = models.PositiveSmallIntegerField(
        _("devices per personal link"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text=_("How many browsers one personal link may be used in."),
    )
    max_device_moves = models.PositiveSmallIntegerField(
        _("moves to another browser per link"),
        default=3,
        validators=[MaxValueValidator(50)],
        help_text=_(
            "How many times a participant may move their link to a new browser "
            "with a code e-mailed to them. 0: only the organiser can reset a link."
        ),
    )
    opens_minutes_before = models.PositiveIntegerField(
        _("room opens (minutes before start)"),
        null=True,
        blank=True,
        help_text=_("Empty: links work at any time until they expire."),
    )
    closes_minutes_after = models.PositiveIntegerField(
        _("room closes (minutes after end)"),
        null=True,
        blank=True,
        help_text=_("Empty: the room stays open after the webinar ends."),
    )
    # --- reminders, schedule changes, cancellation (mailing/reminders.py,
    # mailing/schedule.py) -----------------------------------------------------------
    reminders_enabled = models.BooleanField(
        _("send reminders"),
        default=True,
        help_text=_(
            "E-mail every participant with an address their personal link again "
            "before the start."
        ),
    )
    reminder_offsets = models.CharField(
        _("reminders before the start"),
        max_length=100,
        blank=True,
        default="24h, 1h",
        validators=[validate_reminder_offsets],
        help_text=_("E.g. “24h, 1h” or “2d, 30m” (d = days, h = hours, m = minutes)."),
    )
    # Set by "Cancel webinar" (an admin action, never the edit form) and by what
    # participants were last told of the schedule (start, duration, timezone); kept
    # across revisions by with_content_json, so publishing an older draft can
    # neither reopen a cancelled webinar nor forget what was announced.
    cancelled_at = models.DateTimeField(
        _("cancelled at"), null=True, blank=True, editable=False
    )
    announced_schedule = models.JSONField(default=dict, blank=True, editable=False)
    hide_from_search_engines = models.BooleanField(
        _("hide from search engines"),
        default=False,
        help_text=_("Adds noindex to the teaser too and keeps it out of site search."),
    )
    # --- replay: the recording, shown in the room after the end (never indexed) ----
    replay = StreamField(
        ReplayBlock(),
        verbose_name=_("replay"),
        blank=True,
        help_text=_(
            "Private: the recording (a player embed or a document). Participants "
            "see it in the room after the webinar ends, with their personal link."
        ),
    )
    replay_until = models.DateTimeField(
        _("replay available until"),
        null=True,
        blank=True,
        help_text=_(
            "The room stays open for the replay until then, even when the access "
            "window closes earlier. Empty: as long as the room is open."
        ),
    )

    # --- automatic invitation (mailing/invitations.py) ------------------------------
    invitation_subject = models.CharField(
        _("invitation subject"),
        max_length=255,
        blank=True,
        help_text=_(
            "The e-mail a buyer or a re-issued link gets automatically. Empty: the "
            'one in Settings → "Webinar mailing".'
        ),
    )
    invitation_body = RichTextField(
        _("invitation message"),
        blank=True,
        help_text=_(
            "Merge fields: {{ name }}, {{ webinar }}, {{ starts_at }}. The personal "
            "link and the room password are always added below."
        ),
    )

    parent_page_types = ["wagtail_paidwebinar.WebinarIndexPage"]
    subpage_types: list[str] = []
    template = "wagtail_paidwebinar/webinar_page.html"

    # The room is deliberately absent from both lists: search results and API v2
    # would otherwise show it to anyone.
    search_fields = [
        *Page.search_fields,
        index.SearchField("intro"),
        index.SearchField("presenter"),
        index.FilterField("starts_at"),
    ]
    api_fields = [
        APIField("intro"),
        APIField("starts_at"),
        APIField("duration_minutes"),
        APIField("timezone"),
        APIField("presenter"),
        APIField("cta_url"),
        APIField("cta_label"),
    ]

    content_panels = [
        *Page.content_panels,
        FieldPanel("intro"),
        FieldRowPanel(
            [FieldPanel("starts_at"), FieldPanel("duration_minutes")],
            heading=_("When"),
        ),
        TimezoneSelect("timezone"),
        FieldPanel("presenter"),
        FieldPanel("image"),
        MultiFieldPanel(
            [FieldPanel("cta_url"), FieldPanel("cta_label")],
            heading=_("Call to action"),
        ),
        MultiFieldPanel(
            [
                ScheduleStatusPanel(),
                FieldPanel("reminders_enabled"),
                FieldPanel("reminder_offsets"),
            ],
            heading=_("Reminders"),
        ),
    ]
    room_panels = [
        FieldPanel("room"),
        MultiFieldPanel(
            [FieldPanel("replay"), FieldPanel("replay_until")],
            heading=_("Replay"),
            help_text=_(
                "Shown to participants after the end of the webinar, until the "
                "date below. Links, devices and the room password still apply."
            ),
        ),
    ]
    access_panels = [
        PublicRoomWarningPanel(),
        MultiFieldPanel(
            [
                FieldPanel("room_password"),
                FieldPanel("allow_link_sharing"),
                FieldPanel("max_devices_per_link"),
                FieldPanel("max_device_moves"),
            ],
            heading=_("Who gets in"),
            help_text=_(
                "A changed password or sharing setting takes effect only when the "
                "page is published; “Save draft” keeps the published settings in "
                "force. With link sharing on and no room password, anyone who has "
                "the page address gets in."
            ),
        ),
        FieldRowPanel(
            [FieldPanel("opens_minutes_before"), FieldPanel("closes_minutes_after")],
            heading=_("Access window"),
        ),
        FieldPanel("hide_from_search_engines"),
        MultiFieldPanel(
            [FieldPanel("invitation_subject"), FieldPanel("invitation_body")],
            heading=_("Automatic invitation"),
        ),
    ]
    edit_handler = TabbedInterface(
        [
            ObjectList(content_panels, heading=_("Teaser")),
            ObjectList(room_panels, heading=_("Room")),
            ObjectList(access_panels, heading=_("Access")),
            ObjectList(Page.promote_panels, heading=_("Promote")),
            ObjectList(Page.settings_panels, heading=_("Settings")),
        ]
    )

    class Meta:
        verbose_name = _("webinar")
        verbose_name_plural = _("webinars")

    # --- schedule -----------------------------------------------------------------
    @cached_property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.duration_minutes)

    @property
    def local_starts_at(self) -> dt.datetime:
        return self.starts_at.astimezone(self.tzinfo)

    @property
    def local_ends_at(self) -> dt.datetime:
        return self.ends_at.astimezone(self.tzinfo)

    @property
    def access_opens_at(self) -> dt.datetime | None:
        if self.opens_minutes_before is None:
            return None
        return self.starts_at - dt.timedelta(minutes=self.opens_minutes_before)

    @property
    def access_closes_at(self) -> dt.datetime | None:
        """The end of the access window; a replay offered until later keeps the room
        open until the replay ends (the gate, the materials and the teaser all read
        the window from here)."""
        if self.closes_minutes_after is None:
            return None
        closes = self.ends_at + dt.timedelta(minutes=self.closes_minutes_after)
        replay_until = self.replay_closes_at
        if replay_until is not None and replay_until > closes:
            return replay_until
        return closes

    # --- replay ---------------------------------------------------------------------
    @property
    def has_replay(self) -> bool:
        """Does the page offer a recording? (Reads the raw stream: no queries.)"""
        return len(self.replay.raw_data) > 0

    @property
    def replay_closes_at(self) -> dt.datetime | None:
        """When the replay ends: ``replay_until`` when a replay is offered."""
        return self.replay_until if self.has_replay else None

    def is_replay_available(self, now: dt.datetime | None = None) -> bool:
        """Is the replay shown to the room's visitors at ``now``?

        From just after the end (at ``ends_at`` the webinar is still live) until
        ``replay_until`` inclusive, and never once the room has closed. Who sees
        the room at all is the gate's decision; this is only the replay's window.
        """
        now = now or timezone.now()
        if not self.has_replay or not self.is_past(now):
            return False
        if self.replay_until is not None and now > self.replay_until:
            return False
        return not self.is_room_closed(now)

    def is_replay_over(self, now: dt.datetime | None = None) -> bool:
        """A replay was offered and its time has passed."""
        now = now or timezone.now()
        return (
            self.has_replay and self.is_past(now) and not self.is_replay_available(now)
        )

    @property
    def local_replay_until(self) -> dt.datetime | None:
        until = self.replay_closes_at
        return until.astimezone(self.tzinfo) if until is not None else None

    def is_past(self, now: dt.datetime | None = None) -> bool:
        return self.ends_at < (now or timezone.now())

    def is_live(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now <= self.ends_at

    def is_room_closed(self, now: dt.datetime | None = None) -> bool:
        """True once the access window has closed (never without a window)."""
        closes = self.access_closes_at
        return closes is not None and closes < (now or timezone.now())

    @property
    def local_access_closes_at(self) -> dt.datetime | None:
        closes = self.access_closes_at
        return closes.astimezone(self.tzinfo) if closes is not None else None

    def clean(self):
        super().clean()
        if (
            self.replay_until is not None
            and self.starts_at is not None
            and self.duration_minutes
            and self.replay_until <= self.ends_at
        ):
            raise ValidationError(
                {
                    "replay_until": _(
                        "The replay is shown after the webinar ends: choose a "
                        "later date."
                    )
                }
            )

    def room_is_public(self) -> bool:
        """Link sharing on with no room password: the page address alone admits
        anyone, personal links or not. Allowed, but editors are warned."""
        return self.allow_link_sharing and not self.room_password

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    def reminder_minutes(self) -> list[int]:
        """The reminder offsets in minutes before the start, largest first (none
        when reminders are off)."""
        if not self.reminders_enabled:
            return []
        return parse_reminder_offsets(self.reminder_offsets) or []

    def schedule_snapshot(self) -> dict:
        """Start, duration and timezone as stored in ``announced_schedule``."""
        return {
            "starts_at": self.starts_at.astimezone(dt.UTC).isoformat(),
            "duration_minutes": self.duration_minutes,
            "timezone": self.timezone,
        }

    def with_content_json(self, content):
        # A revision's copy of these fields is never the truth: they are written by
        # admin actions on the live row (see their definitions).
        obj = super().with_content_json(content)
        obj.cancelled_at = self.cancelled_at
        obj.announced_schedule = self.announced_schedule
        return obj

    @property
    def cta_text(self) -> str:
        return self.cta_label or str(_("Buy access"))

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        # The gate (on_serve_page) puts its verdict on the request. Whatever did not
        # go through it sees the teaser only, except editors' previews
        # (serve_preview bypasses on_serve_page and is editors-only).
        preview = bool(getattr(request, "is_preview", False))
        visible = getattr(request, "paidwebinar_room", False) or preview
        context.setdefault("room_visible", visible)
        # Editors previewing see the replay whatever the time, to check it.
        context.setdefault(
            "replay_visible", visible and (preview or self.is_replay_available())
        )
        link = getattr(request, "paidwebinar_link", None)
        context.setdefault("paidwebinar_link", link)
        return context

    # --- keeping hidden pages out of sitemaps and site search ----------------------
    def get_sitemap_urls(self, request=None):
        if self.hide_from_search_engines:
            return []
        return super().get_sitemap_urls(request)

    @classmethod
    def get_indexed_objects(cls):
        # update_index skips hidden webinars; the post_save receiver below removes
        # one that was indexed before it was hidden.
        return super().get_indexed_objects().filter(hide_from_search_engines=False)


@receiver(post_save, sender=WebinarPage)
def _unindex_hidden_webinar(sender, instance, raw=False, **kwargs):
    """Drop a webinar from the search index once it is hidden from search engines.

    modelsearch only adds what get_indexed_objects() returns and never removes, so a
    page switched to hidden would otherwise stay findable. The check reads the saved
    row, not the instance: saving a draft revision must not change the live index.
    """
    if raw or index.get_indexed_instance(instance) is not None:
        return
    index.remove_object(instance)
