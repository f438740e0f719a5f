"""``manage.py paidwebinar_grant GROUP``: a group's members see the plugin's menus."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

LINKS = "wagtailsnippets_wagtail_paidwebinar_personallink:list"


def grant(*args) -> str:
    out = StringIO()
    call_command("paidwebinar_grant", *args, stdout=out)
    return out.getvalue()


def perms(group: Group) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


@pytest.fixture
def editors():
    return Group.objects.create(name="Webinar editors")


def test_editor_sees_the_links_only_after_grant(editors):
    user = get_user_model().objects.create_user("ed", "ed@example.com", "pw")
    user.groups.add(editors)
    client = Client()
    client.force_login(user)
    assert client.get(reverse(LINKS)).status_code in (302, 403)

    output = grant("Webinar editors")

    assert "granted  wagtailadmin.access_admin" in output
    assert "granted  wagtail_paidwebinar.view_personal_link_url" in output
    assert client.get(reverse(LINKS)).status_code == 200


def test_grants_the_plugin_models_and_not_page_types(editors):
    grant("Webinar editors")
    granted = perms(editors)
    for name in (
        "wagtailadmin.access_admin",
        "wagtail_paidwebinar.add_personallink",
        "wagtail_paidwebinar.change_personallink",
        "wagtail_paidwebinar.view_personal_link_url",
        "wagtail_paidwebinar.add_mailing",
        "wagtail_paidwebinar.send_mailing",
        "wagtail_paidwebinar.export_mailing",
        "wagtail_paidwebinar.delete_subscriber",
        "wagtail_paidwebinar.change_mailingsettings",
        "wagtail_paidwebinar.view_accessevent",
    ):
        assert name in granted, name
    assert not any("webinarpage" in name for name in granted)


def test_second_run_grants_nothing_new(editors):
    grant("Webinar editors")
    before = perms(editors)
    output = grant("Webinar editors")
    assert "granted " not in output
    assert f"0 permissions granted, {len(before)} already held" in output
    assert perms(editors) == before


def test_read_only(editors):
    grant("Webinar editors", "--read-only")
    plugin = {p for p in perms(editors) if p.startswith("wagtail_paidwebinar.")}
    assert "wagtail_paidwebinar.view_personallink" in plugin
    assert "wagtail_paidwebinar.view_mailing" in plugin
    # Only the stock view_<model> permissions: a link's URL admits its holder.
    assert all(p.split(".")[1].startswith("view_") for p in plugin)
    assert "wagtail_paidwebinar.view_personal_link_url" not in plugin


def test_unknown_group_is_a_clear_error(editors):
    with pytest.raises(CommandError, match="No group named 'Editorz'.*Webinar editors"):
        grant("Editorz")
