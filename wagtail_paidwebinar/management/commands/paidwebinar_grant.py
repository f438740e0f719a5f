"""Give a group the plugin's permissions: ``paidwebinar_grant GROUP [--read-only]``.

Editors see none of the plugin's admin menus until their group has these permissions;
this is the same as ticking them in Settings -> Groups, in one command.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from wagtail.models import Page

APP_LABEL = "wagtail_paidwebinar"
ADMIN_ACCESS = ("wagtailadmin", "access_admin")


def plugin_permissions(*, read_only: bool = False) -> list[Permission]:
    """The permissions of the plugin's models (links, mailings, subscribers, ...).

    Page types are left out: Wagtail grants pages through the page tree (Settings ->
    Groups -> Page permissions), not model permissions. ``read_only`` keeps the
    ``view_<model>`` permissions only, so not ``view_personal_link_url``: a link's
    URL admits its holder to the webinar.
    """
    content_types = [
        ct
        for ct in ContentType.objects.filter(app_label=APP_LABEL)
        if ct.model_class() is not None and not issubclass(ct.model_class(), Page)
    ]
    permissions = Permission.objects.filter(content_type__in=content_types)
    if read_only:
        permissions = [
            p
            for p in permissions
            if p.codename == f"view_{p.content_type.model}"  # the default one only
        ]
    return sorted(permissions, key=lambda p: (p.content_type.model, p.codename))


def grant(group: Group, *, read_only: bool = False) -> tuple[list[str], list[str]]:
    """Add Wagtail admin access and the plugin's permissions to ``group``.

    Idempotent. Returns the ``app_label.codename`` names newly granted and those the
    group already had.
    """
    wanted = [
        Permission.objects.get(
            content_type__app_label=ADMIN_ACCESS[0], codename=ADMIN_ACCESS[1]
        ),
        *plugin_permissions(read_only=read_only),
    ]
    had = set(group.permissions.values_list("pk", flat=True))
    new = [p for p in wanted if p.pk not in had]
    group.permissions.add(*new)

    def name(p: Permission) -> str:
        return f"{p.content_type.app_label}.{p.codename}"

    return [name(p) for p in new], [name(p) for p in wanted if p.pk in had]


class Command(BaseCommand):
    help = (
        "Give a group Wagtail admin access and the plugin's permissions (links, "
        "mailings, subscribers, lists, signatures, attendance, the mailing setting), "
        "so its members see the plugin's menus. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("group", help="Name of an existing group, e.g. Editors.")
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="Only the view permissions (no link URLs, no changes, no sending).",
        )

    def handle(self, *args, group: str, read_only: bool, **options):
        target = Group.objects.filter(name=group).first()
        if target is None:
            names = ", ".join(
                Group.objects.order_by("name").values_list("name", flat=True)
            )
            raise CommandError(
                f"No group named {group!r}. Existing groups: {names or 'none'}. "
                "Create it in Settings -> Groups first."
            )
        granted, already = grant(target, read_only=read_only)
        for name in granted:
            self.stdout.write(f"granted  {name}")
        for name in already:
            self.stdout.write(f"had      {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{target.name}: {len(granted)} permissions granted, "
                f"{len(already)} already held."
            )
        )
