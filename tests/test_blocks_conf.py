import pytest
from django.core.checks import run_checks
from wagtail.blocks import StructBlockValidationError

from wagtail_paidwebinar import conf
from wagtail_paidwebinar.blocks import StreamEmbedBlock, embed_src


@pytest.mark.parametrize(
    ("url", "src"),
    [
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://youtu.be/dQw4w9WgXcQ",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://www.youtube.com/live/dQw4w9WgXcQ",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871"),
        ("https://player.vimeo.com/video/1", "https://player.vimeo.com/video/1"),
        ("https://meet.jit.si/room", "https://meet.jit.si/room"),
        ("http://www.youtube.com/watch?v=dQw4w9WgXcQ", None),
        ("https://evil.example.com/player", None),
        ("https://www.youtube.com.evil.com/watch?v=x", None),
        ('https://www.youtube.com/watch?v="><script>', None),
        ("javascript:alert(1)", None),
        ("https://[::1", None),
    ],
)
def test_embed_src(url, src):
    assert embed_src(url) == src


def test_embed_hosts_setting(settings):
    settings.WAGTAIL_PAIDWEBINAR_EMBED_HOSTS = ["stream.example.org"]
    assert (
        embed_src("https://stream.example.org/live/1")
        == "https://stream.example.org/live/1"
    )
    assert embed_src("https://meet.jit.si/room") is None


def test_stream_block_rejects_unknown_host():
    block = StreamEmbedBlock()
    with pytest.raises(StructBlockValidationError):
        block.clean(block.to_python({"url": "https://evil.example.com/x", "title": ""}))
    value = block.clean(
        block.to_python({"url": "https://youtu.be/dQw4w9WgXcQ", "title": ""})
    )
    html = block.render(value)
    assert 'src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"' in html
    assert "<iframe" in html


def test_settings_default_and_override(settings):
    assert conf.get_setting("TOKEN_PARAM") == "access"
    settings.WAGTAIL_PAIDWEBINAR_TOKEN_PARAM = "t"
    assert conf.get_setting("TOKEN_PARAM") == "t"
    with pytest.raises(conf.PaidWebinarImproperlyConfigured):
        conf.get_setting("NO_SUCH_SETTING")


def test_bad_base_url_is_a_system_check_error(settings):
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = "example.com"
    errors = [e for e in run_checks() if e.id == "wagtail_paidwebinar.E001"]
    assert errors and "https://" in errors[0].msg


@pytest.mark.django_db
def test_absolute_page_url_uses_base_url_and_survives_orphan_pages(settings, webinar):
    from wagtail.models import Site

    from wagtail_paidwebinar.utils import absolute_page_url

    assert absolute_page_url(webinar) == "https://webinars.example.com" + webinar.url
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = ""
    site = Site.objects.get(is_default_site=True)
    assert absolute_page_url(webinar) == site.root_url + webinar.url
    Site.objects.all().delete()
    Site.clear_site_root_paths_cache()
    webinar.refresh_from_db()
    webinar = type(webinar).objects.get(pk=webinar.pk)
    assert absolute_page_url(webinar).endswith(webinar.url_path), absolute_page_url(
        webinar
    )
