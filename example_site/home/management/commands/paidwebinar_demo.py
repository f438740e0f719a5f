"""Create demo content: a home page, a "Webinars" index and one upcoming webinar."""

import datetime as dt
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from wagtail.models import Page, Site

from home.models import HomePage
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.conf import get_setting
from wagtail_paidwebinar.models import WebinarIndexPage, WebinarPage

INTRO = (
    "<p><b>Szybki Django na produkcji</b> — 90 minut o tym, jak mierzyć i przyspieszać "
    "aplikacje Django i Wagtail: zapytania, cache, kolejki zadań.</p>"
    "<p><i>Fast Django in production</i> — a 90-minute live session on measuring and "
    "speeding up Django and Wagtail sites: queries, caching and job queues. "
    "The session is in Polish with English slides.</p>"
)
PARTICIPANTS = """\
Anna Nowak <anna.nowak@example.com>
Zażółć Gęślą-Jaźń, zazolc@example.com
Łukasz Wiśniewski <lukasz.w@example.com>
Małgorzata Dąbrowska, m.dabrowska@example.com
John Smith <john.smith@example.com>
"""

ROOM = [
    {
        "type": "text",
        "value": (
            "<h3>Witamy! / Welcome!</h3><p>Transmisja startuje o czasie. "
            "Pytania zadawaj "
            "na czacie pod wideo. / The stream starts on time; ask questions in the "
            "chat below the video.</p>"
        ),
    },
    {
        "type": "stream",
        "value": {
            "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "title": "Szybki Django — transmisja",
        },
    },
    {
        "type": "meeting",
        "value": {
            "url": "https://meet.jit.si/szybki-django-demo",
            "label": "Dołącz do Q&A",
        },
    },
]


class Command(BaseCommand):
    help = "Create demo content for the example site and print where to look."

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin-password",
            help="Create (or reset) the superuser 'admin' with this password. "
            "Use 'random' to generate one.",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        site = Site.objects.get(is_default_site=True)
        home = self._home(site)
        index = WebinarIndexPage.objects.child_of(home).first()
        if index is None:
            index = WebinarIndexPage(
                title="Webinary / Webinars",
                slug="webinars",
                intro="<p>Płatne webinary na żywo. / Paid live webinars.</p>",
            )
            home.add_child(instance=index)
            index.save_revision().publish()
        webinar = WebinarPage.objects.child_of(index).first()
        if webinar is None:
            webinar = WebinarPage(
                title="Szybki Django na produkcji",
                slug="szybki-django",
                intro=INTRO,
                starts_at=(timezone.now() + dt.timedelta(days=3)).replace(
                    minute=0, second=0, microsecond=0
                ),
                duration_minutes=90,
                timezone="Europe/Warsaw",
                presenter="Anna Nowak",
                cta_url="https://shop.example.com/szybki-django",
                cta_label="Kup dostęp / Buy access",
                room=ROOM,
                room_password="kawa-z-mlekiem",  # noqa: S106 (demo content)
                allow_link_sharing=False,
                max_devices_per_link=1,
            )
            index.add_child(instance=webinar)
            webinar.save_revision().publish()

        if not webinar.personal_links.exists():
            generate_links(webinar, PARTICIPANTS)
        first_link = webinar.personal_links.order_by("pk").first()

        base = get_setting("BASE_URL") or site.root_url
        self.stdout.write(self.style.SUCCESS("Demo content is ready."))
        self.stdout.write(f"  Webinar page:  {base.rstrip('/')}{webinar.url}")
        self.stdout.write(f"  Room password: {webinar.room_password}")
        self.stdout.write(
            f"  A personal link ({first_link.name}): {first_link.get_url()}"
        )
        self.stdout.write(f"  Admin:         {base.rstrip('/')}/admin/")

        password = options.get("admin_password")
        if password:
            if password == "random":
                password = secrets.token_urlsafe(9)
            User = get_user_model()
            user, _created = User.objects.get_or_create(
                username="admin", defaults={"email": "admin@example.com"}
            )
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            self.stdout.write(f"  Log in as:     admin / {password}")

    def _home(self, site):
        if isinstance(site.root_page.specific, HomePage):
            return site.root_page.specific
        # Replace Wagtail's "Welcome" placeholder (a plain Page) by a HomePage.
        root = Page.get_first_root_node()
        old = site.root_page
        if old.specific_class is Page and not old.get_children().exists():
            site.root_page = root
            site.save()
            old.delete()
        home = HomePage(
            title="Webinars by Example",
            slug="home"
            if not root.get_children().filter(slug="home").exists()
            else "demo",
            body="<p>Przykładowa strona z płatnymi webinarami. / An example site "
            "selling webinars.</p>",
        )
        root.add_child(instance=home)
        home.save_revision().publish()
        site.root_page = home
        site.save()
        Site.clear_site_root_paths_cache()
        return home
