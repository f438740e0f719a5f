"""Accessibility basics checked in the browser on visitor pages: <html lang>,
labelled form fields and WCAG AA contrast computed from getComputedStyle."""

from __future__ import annotations

CONTRAST_JS = r"""
(selector) => {
  function parse(value) {
    const m = value.match(/^rgba?\(([^)]+)\)$/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  }
  function channel(v) {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }
  function luminance(c) {
    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  }
  function background(el) {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  }
  function ownText(el) {
    return Array.from(el.childNodes).some(
      n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  }
  const results = [];
  for (const el of document.querySelectorAll(selector)) {
    const style = getComputedStyle(el);
    if (!ownText(el) || style.visibility === "hidden" || el.offsetParent === null) {
      continue;
    }
    let fg = parse(style.color), bg = background(el);
    if (!fg) {
      results.push({text: el.textContent.trim(), ratio: 0, color: style.color});
      continue;
    }
    // A brightness() filter (e.g. on :focus-visible) changes the painted colours:
    // the text, and the background when the element paints its own.
    const b = style.filter.match(/brightness\(([\d.]+)(%?)\)/);
    if (b) {
      const k = parseFloat(b[1]) / (b[2] ? 100 : 1);
      const scale = c => ({r: Math.min(255, c.r * k), g: Math.min(255, c.g * k),
                           b: Math.min(255, c.b * k), a: c.a});
      fg = scale(fg);
      const own = parse(style.backgroundColor);
      if (own && own.a > 0) bg = scale(bg);
    }
    const l1 = luminance(fg), l2 = luminance(bg);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    results.push({
      text: el.textContent.trim().slice(0, 60),
      ratio: (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05),
      large: size >= 24 || (bold && size >= 18.66),
      color: style.color,
      background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`,
    });
  }
  return results;
}
"""

LABELS_JS = """
() => Array.from(document.querySelectorAll(
    "main input:not([type=hidden]), main select, main textarea"))
  .filter(el => !(el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`))
             && !el.getAttribute("aria-label") && !el.closest("label"))
  .map(el => el.outerHTML)
"""


def contrast_failures(page, selector: str) -> list[dict]:
    """Text under ``selector`` whose contrast is below WCAG AA (4.5:1; 3:1 for large
    text); fails when nothing matched, so a renamed class cannot pass silently."""
    results = page.evaluate(CONTRAST_JS, selector)
    assert results, f"no visible text matched {selector!r} on {page.url}"
    return [r for r in results if r["ratio"] < (3.0 if r["large"] else 4.5)]


def assert_accessible_basics(page) -> None:
    """``<html lang>``, labelled form fields and AA contrast of the text and the
    .pw-button on a visitor page."""
    lang = page.evaluate("() => document.documentElement.lang")
    assert lang, f"<html lang> is empty on {page.url}"
    unlabelled = page.evaluate(LABELS_JS)
    assert not unlabelled, f"form fields without a label on {page.url}: {unlabelled}"
    assert not contrast_failures(page, "main *"), page.url
    if page.locator(".pw-button").count():
        buttons = page.evaluate(CONTRAST_JS, ".pw-button")
        assert buttons and all(b["ratio"] >= 4.5 for b in buttons), buttons
