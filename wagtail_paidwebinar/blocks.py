"""StreamField blocks of the private room."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.documents.blocks import DocumentChooserBlock

from . import conf

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")


def embed_src(url: str) -> str | None:
    """The iframe ``src`` for a player URL on an allowed host, or ``None``.

    Nothing is fetched: well-known watch URLs are rewritten to their player URL
    (YouTube to youtube-nocookie, Vimeo to player.vimeo.com), others are used as given.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or host not in conf.get_setting("EMBED_HOSTS"):
        return None
    if host in {"www.youtube.com", "youtube.com", "youtu.be"}:
        if host == "youtu.be":
            video = parts.path.strip("/")
        elif parts.path.startswith(("/embed/", "/live/")):
            video = parts.path.split("/")[2]
        else:
            video = parse_qs(parts.query).get("v", [""])[0]
        if not _YOUTUBE_ID.match(video):
            return None
        return f"https://www.youtube-nocookie.com/embed/{video}"
    if host == "vimeo.com":
        video = parts.path.strip("/").split("/")[0]
        if not video.isdigit():
            return None
        return f"https://player.vimeo.com/video/{video}"
    return url


class StreamEmbedBlock(blocks.StructBlock):
    url = blocks.URLBlock(
        label=_("Player URL"),
        help_text=_(
            "The stream or meeting player address (https). Only hosts listed in "
            "WAGTAIL_PAIDWEBINAR_EMBED_HOSTS are embedded; nothing is fetched."
        ),
    )
    title = blocks.CharBlock(
        label=_("Accessible title"), required=False, max_length=200
    )

    def clean(self, value):
        value = super().clean(value)
        if value.get("url") and embed_src(value["url"]) is None:
            raise blocks.StructBlockValidationError(
                block_errors={
                    "url": ValidationError(
                        _(
                            "This address cannot be embedded. Use an https address "
                            "on one of: %(hosts)s."
                        )
                        % {"hosts": ", ".join(conf.get_setting("EMBED_HOSTS"))}
                    )
                }
            )
        return value

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context)
        context["src"] = embed_src(value.get("url") or "")
        return context

    class Meta:
        icon = "media"
        label = _("Stream embed")
        template = "wagtail_paidwebinar/blocks/stream_embed.html"


class MeetingLinkBlock(blocks.StructBlock):
    url = blocks.URLBlock(label=_("Meeting URL"))
    label = blocks.CharBlock(
        label=_("Button label"), max_length=100, default=_("Join the meeting")
    )

    class Meta:
        icon = "link-external"
        label = _("Meeting link")
        template = "wagtail_paidwebinar/blocks/meeting_link.html"


class MaterialsBlock(blocks.StructBlock):
    heading = blocks.CharBlock(
        label=_("Heading"), max_length=200, default=_("Materials")
    )
    documents = blocks.ListBlock(DocumentChooserBlock(label=_("Document")))

    class Meta:
        icon = "doc-full"
        label = _("Materials")
        template = "wagtail_paidwebinar/blocks/materials.html"


class RoomBlock(blocks.StreamBlock):
    text = blocks.RichTextBlock(label=_("Text"))
    stream = StreamEmbedBlock()
    meeting = MeetingLinkBlock()
    materials = MaterialsBlock()


class ReplayBlock(blocks.StreamBlock):
    """The recording offered after the end: a player embed, documents, a note."""

    stream = StreamEmbedBlock(label=_("Recording (player embed)"))
    materials = MaterialsBlock(label=_("Recording (documents)"))
    text = blocks.RichTextBlock(label=_("Text"))
