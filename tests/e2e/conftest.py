"""Fixtures of the real-browser journeys (issue 6).

Debian's chromium driven by playwright's sync API against pytest-django's live
server, an aiosmtpd sink for e-mail and, with PostgreSQL + Redis, a real RQ worker
subprocess (the mailing tests' fixtures, reused). Without them the in-process queue
sends inline, so the same journey runs on the embedded SQLite default too.

Chromium or playwright missing: the tests skip with a message saying so, unless
PAIDWEBINAR_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from wagtail.models import Site

from tests.utils import make_index, make_user

CHROMIUM = os.environ.get("PAIDWEBINAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Short on purpose: a journey step that takes longer than this is broken, and a
# clear timeout beats a hung CI job.
TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1200, "height": 800}
ADMIN_PASSWORD = "pw"  # tests.utils.make_user's password


def _missing_browser() -> str | None:
    """Why the journeys cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"chromium not found at {CHROMIUM}; install Debian's chromium "
            "(apt-get install chromium) to run the browser journeys"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "the playwright package is not installed; "
            "pip install -e '.[test]' to run the browser journeys"
        )
    return None


def _unavailable(reason: str):
    if os.environ.get("PAIDWEBINAR_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{reason} (PAIDWEBINAR_REQUIRE_BROWSER=1: the browser journeys must run)",
            pytrace=False,
        )
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (contexts isolate the tests). Not per
    session: while playwright runs, this thread has a running asyncio loop, which
    the rest of the suite must not inherit (async_to_sync refuses to run then)."""
    reason = _missing_browser()
    if reason:
        _unavailable(reason)
    from playwright.sync_api import Error, expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # its own default is 5 s

    # Playwright's sync API runs an asyncio loop on this thread, and Django's ORM
    # refuses to run under a running loop (SynchronousOnlyOperation). The test body
    # only runs setup queries between browser calls, never concurrently with them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Django keeps database connections in a "thread critical" asgiref Local: plain
    # thread-local storage while no event loop runs, context-local storage while one
    # does. Once playwright is started, its loop counts as running on this thread,
    # so the test thread would silently get fresh connection objects, without the
    # test database's serialized contents that serialized_rollback restores from
    # (and every later test would then start from an empty database). Hand the
    # existing connection objects over to the storage used from now on.
    wrappers = {alias: connections[alias] for alias in connections.settings}
    try:
        with sync_playwright() as pw:
            for alias, wrapper in wrappers.items():
                connections[alias] = wrapper
            try:
                chromium = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=30_000
                )
            except Error as exc:
                _unavailable(f"chromium at {CHROMIUM} did not start: {exc}")
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Browsers:
    """Opens isolated browser contexts ("another person's browser") and tracks the
    JavaScript errors of their pages."""

    browser: object
    base_url: str
    contexts: list = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def new_page(self, *, clipboard: bool = False):
        context = self.browser.new_context(
            viewport=VIEWPORT,
            base_url=self.base_url,
            locale="en-GB",
            timezone_id="Europe/Warsaw",
        )
        if clipboard:
            try:
                context.grant_permissions(
                    ["clipboard-read", "clipboard-write"], origin=self.base_url
                )
            except Exception:  # noqa: BLE001, S110 - headless may not offer it
                pass
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.page_errors.append(f"{page.url}: {exc}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.e2e_failed = True
    return report


@pytest.fixture
def browsers(request, browser, e2e_site, shots):
    opened = Browsers(browser, e2e_site.url)
    yield opened
    if getattr(request.node, "e2e_failed", False):
        # What each browser showed when the test failed (CI keeps the folder).
        for i, context in enumerate(opened.contexts):
            for j, page in enumerate(context.pages):
                path = shots(page, f"FAILED-{request.node.name}-{i}-{j}")
                print(f"browser {i}, page {j}: {page.url} -> {path}")
        if opened.page_errors:
            print("JavaScript errors:", *opened.page_errors, sep="\n  ")
    opened.close()


@pytest.fixture
def shots(tmp_path_factory):
    """``shots(page, name)`` saves ``<name>.png`` (viewport, not full page, so the
    images stay small) into $PAIDWEBINAR_SCREENSHOTS or a pytest temporary folder."""
    folder = os.environ.get("PAIDWEBINAR_SCREENSHOTS")
    target = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    target.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, *, full_page: bool = False) -> Path:
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    shot.folder = target
    return shot


@dataclass
class E2ESite:
    url: str
    index: object
    admin: object
    admin_password: str = ADMIN_PASSWORD

    def path_of(self, absolute_url: str) -> str:
        parts = urlsplit(absolute_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def _serial_live_server_thread():
    from django.core.servers.basehttp import WSGIServer
    from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

    class SerialLiveServerThread(LiveServerThread):
        """One request at a time, in the server thread. The test thread shares its
        in-memory SQLite connection with the server; two requests at once (Wagtail's
        autosave racing a Publish click) would otherwise run two transactions on
        one connection ("cannot start a transaction within a transaction")."""

        def _create_server(self, connections_override=None):
            return WSGIServer(
                (self.host, self.port),
                QuietWSGIRequestHandler,
                allow_reuse_address=False,
            )

    return SerialLiveServerThread


@pytest.fixture
def live_url(request, transactional_db) -> str:
    """The live server's URL: pytest-django's (threaded) server, or a one-request-
    at-a-time server when the test database is in-memory SQLite."""
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        yield request.getfixturevalue("live_server").url
        return
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the proxy
    conn.inc_thread_sharing()
    thread = _serial_live_server_thread()(
        "localhost", StaticFilesHandler, connections_override={conn.alias: conn}
    )
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        conn.dec_thread_sharing()
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()
    conn.dec_thread_sharing()


@pytest.fixture
def e2e_site(live_url, settings):
    """The example site on the live server: links and e-mails point at it."""
    settings.WAGTAIL_PAIDWEBINAR_BASE_URL = live_url
    settings.WAGTAILADMIN_BASE_URL = live_url
    # No network here: Wagtail's default avatar instead of a broken gravatar image.
    settings.WAGTAIL_GRAVATAR_PROVIDER_URL = None
    # Wagtail 8 autosaves a new page as a draft, at a moment the test cannot know; a
    # Publish click racing it creates the page twice ("slug already in use"). The
    # journeys test the plugin, so they publish without autosave.
    settings.WAGTAIL_AUTOSAVE_INTERVAL = 0
    parts = urlsplit(live_url)
    Site.objects.filter(is_default_site=True).update(
        hostname=parts.hostname, port=parts.port
    )
    return E2ESite(
        url=live_url,
        index=make_index(),
        admin=make_user("admin", superuser=True),
    )


@dataclass
class Delivery:
    """How invitations leave the site in this run and where they arrive."""

    mode: str  # "worker" (real RQ worker subprocess) or "inline"
    smtp: object
    worker: object = None

    def messages_to(self, address: str) -> list:
        return [m for m in self.smtp.messages if address.lower() in m["To"].lower()]

    def personal_link(self, address: str) -> str:
        """The personal link in the plain-text part of the e-mail to ``address``."""
        messages = self.messages_to(address)
        assert len(messages) == 1, (address, [m["To"] for m in self.smtp.messages])
        text = messages[0].get_body(preferencelist=("plain",)).get_content()
        found = re.findall(r"https?://\S+[?&]access=[A-Za-z0-9_.-]+", text)
        assert found, text
        return found[0]


@pytest.fixture
def delivery(request, smtp_settings, smtp_server, e2e_site):
    """A real RQ worker with PostgreSQL + REDIS_URL (as in CI); otherwise the
    in-process queue, which sends during the "Send" request itself."""
    if os.environ.get("REDIS_URL") and connection.vendor == "postgresql":
        start_worker = request.getfixturevalue("rq_worker")
        worker = start_worker(
            DJANGO_SETTINGS_MODULE="tests.e2e.worker_settings",
            WAGTAIL_PAIDWEBINAR_BASE_URL=e2e_site.url,
        )
        return Delivery("worker", smtp_server, worker)
    request.getfixturevalue("inline_queue")
    return Delivery("inline", smtp_server)
