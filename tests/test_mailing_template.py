"""The invitation e-mail template after premailer: what the mail clients need survives
(the <style> rules that cannot be inlined, Outlook's conditional comments), the
personal values land in every place, and no line of the template grows near SMTP's
998-octet limit."""

from __future__ import annotations

import re

import pytest
from django.utils import translation
from wagtail.models import Site

from tests.fixtures_mailing import make_link_holders
from wagtail_paidwebinar.mailing import create_mailing, render_preview
from wagtail_paidwebinar.models import MailingSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def preview(webinar):
    ms = MailingSettings.for_site(Site.objects.get(is_default_site=True))
    ms.signature = "<p>Best regards</p>"
    ms.footer = "<p>Example Ltd</p>"
    ms.save()
    link = make_link_holders(webinar, 1, names=["Anna <Nowak>"])[0]
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>Hi</p>")
    return link, render_preview(mailing, link).html


def styles(html: str) -> str:
    return "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL))


def test_rules_premailer_cannot_inline_stay_in_the_head(preview):
    _link, html = preview
    css = styles(html)
    for rule in (
        "@media (max-width: 620px)",
        "@media (prefers-color-scheme: dark)",
        "a[x-apple-data-detectors]",
        "u + #body a",
        "[data-ogsc] .pw-mail-text",
        "[data-ogsb] .pw-mail-card",
        "mso-table-lspace",
    ):
        assert rule in css, rule
    assert "data-premailer" not in html
    # The first stylesheet is inlined and gone from the head.
    assert ".pw-mail-preheader" not in css
    assert re.search(r'class="pw-mail-preheader" style="display:none', html)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<body id="body"' in html


def test_personal_values_everywhere_and_escaped(preview):
    link, html = preview
    url = link.get_url().replace("&", "&amp;")
    # Outlook's VML button, the styled button, the link's target and its text.
    vml = r"<!--\[if mso\]>\s*<v:roundrect[^>]+href=\""
    assert re.search(vml + re.escape(url), html)
    assert html.count(url) == 4
    assert "<title>Hi Anna &lt;Nowak&gt;</title>" in html
    assert "kawa123" in html
    assert "Example Ltd" in html and "Best regards" in html


def test_no_long_lines_from_the_template(preview):
    _link, html = preview
    assert max(len(line.encode()) for line in html.splitlines()) < 900


def test_preheader_is_translated(webinar):
    link = make_link_holders(webinar, 1)[0]
    # The e-mail's language is the mailing's (issue 12 item 9), not the active one.
    with translation.override("pl"):
        mailing = create_mailing(webinar, subject="Hi", body_html="", language="pl")
        html = render_preview(mailing, link).html
    assert 'lang="pl"' in html
    preheader = re.search(r'class="pw-mail-preheader"[^>]*>([^<]*)', html).group(1)
    assert webinar.title in preheader
    assert "Link osobisty znajdziesz w tej wiadomości." in preheader
    assert "Dołącz do webinaru" in html
