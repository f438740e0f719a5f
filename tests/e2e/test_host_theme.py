"""The visitor pages inside a host site's layout (issue 11, item 12): a host-like
``base.html`` and the README's override of ``wagtail_paidwebinar/base.html``, in the
host's light and dark theme and in the visitor's dark mode, in Debian's chromium.

Screenshots go to $PAIDWEBINAR_SCREENSHOTS (docs/screenshots/host-*.png there)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.fixtures_gate import ROOM_WORD, make_link, room_blocks
from tests.utils import make_webinar

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

HOST_TEMPLATES = Path(__file__).resolve().parent / "host_templates"


@pytest.fixture
def host_layout(settings):
    """The host's templates first, as a site that overrides base.html has them."""
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [HOST_TEMPLATES, *templates[0]["DIRS"]]
    settings.TEMPLATES = templates


def luminance(css_colour: str) -> float:
    """Relative luminance of an ``rgb(...)``/``rgba(...)`` computed colour."""
    parts = css_colour[css_colour.index("(") + 1 : css_colour.index(")")].split(",")
    r, g, b = (float(p) / 255 for p in parts[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def card_style(page, selector: str) -> dict:
    return page.eval_on_selector(
        selector,
        """el => {
            const s = getComputedStyle(el), r = el.getBoundingClientRect();
            const main = el.closest('main').getBoundingClientRect();
            return {color: s.color, background: s.backgroundColor, width: r.width,
                    left: r.left, mainLeft: main.left, mainWidth: main.width,
                    font: s.fontFamily};
        }""",
    )


@pytest.fixture
def webinars(e2e_site):
    teaser = make_webinar(e2e_site.index, title="Fast Django", room_password="kawa")
    open_room = make_webinar(
        e2e_site.index,
        title="Open Office Hours",
        allow_link_sharing=True,
        room=room_blocks(),
    )
    return teaser, open_room


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_pages_in_the_host_layout(
    browsers, e2e_site, host_layout, webinars, shots, theme
):
    teaser, open_room = webinars
    link = make_link(teaser, "Anna Nowak")
    page = browsers.new_page()
    dark = theme == "dark"

    for name, path, selector in (
        ("teaser", f"{teaser.url}?theme={theme}", ".pw-teaser"),
        ("room", f"{open_room.url}?theme={theme}", ".pw-room"),
        ("confirm", f"{teaser.url}?access={link.token}&theme={theme}", ".pw-gate"),
    ):
        page.goto(path)
        # The host's layout is there: its header, its <main>, its footer.
        assert page.locator(".host-header").count() == 1, name
        assert page.locator("main.host-main " + selector).count() == 1, name
        # The plugin's stylesheet and the robots meta are in the <head>.
        head = page.locator("head").inner_html()
        assert "wagtail_paidwebinar/css/webinar.css" in head, name
        if name in ("room", "confirm"):
            assert 'name="robots"' in head, name
        if name == "room":
            assert ROOM_WORD in page.locator(".pw-room").inner_text()
        style = card_style(page, selector)
        # Both colours set, readable, and matching the theme.
        assert contrast(style["color"], style["background"]) >= 7, (name, style)
        assert (luminance(style["background"]) < 0.1) is dark, (name, style)
        # The card's width is the plugin's own, inside the host's column.
        assert style["left"] >= style["mainLeft"], (name, style)
        assert style["width"] <= style["mainWidth"], (name, style)
        # The host's fonts (its serif), not the plugin's.
        assert "Georgia" in style["font"], (name, style)
        shots(page, f"host-{theme}-{name}", full_page=True)

    assert not browsers.page_errors


def test_own_layout_follows_the_visitors_dark_mode(browsers, e2e_site, webinars, shots):
    """Without a host override (the plugin's base.html), a visitor whose system is
    dark gets dark cards on a dark page."""
    teaser, _open_room = webinars
    page = browsers.new_page()
    page.emulate_media(color_scheme="dark")
    page.goto(teaser.url)
    style = card_style(page, ".pw-teaser")
    assert luminance(style["background"]) < 0.1, style
    assert contrast(style["color"], style["background"]) >= 7, style
    shots(page, "host-none-dark-teaser", full_page=True)
