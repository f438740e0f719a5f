"""The password throttle holds against address rotation and many addresses, and its
counters are shared by every process that shares the cache."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import checks

from tests.fixtures_gate import enter_password, room_blocks
from tests.utils import make_webinar
from wagtail_paidwebinar import throttle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shared(index):
    """A page whose only secret is its password (link sharing on)."""
    return make_webinar(
        index,
        title="Shared room",
        slug="shared-room",
        room=room_blocks(),
        room_password="kawa123",
        allow_link_sharing=True,
    )


def attempt(browser, webinar, password, addr, n=0):
    # A fresh browser per attempt: no cookie, a new user agent, so only the address
    # (and the page) can tie the attempts together.
    client = browser(HTTP_USER_AGENT=f"bot {n}", REMOTE_ADDR=addr)
    return enter_password(client, webinar, password)


def test_ipv6_addresses_of_one_64_share_the_address_ceiling(browser, shared, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_IP_FAILURES = 8
    for n in range(8):
        addr = f"2001:db8:1:2:{n:x}:{n:x}:{n:x}:1"
        assert attempt(browser, shared, "wrong", addr, n).status_code == 200
    response = attempt(browser, shared, "kawa123", "2001:db8:1:2:ffff::9", 99)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # The next /64 is another client network.
    assert attempt(browser, shared, "kawa123", "2001:db8:1:3::1").status_code == 302


def test_ipv4_addresses_are_counted_one_by_one(browser, shared, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_IP_FAILURES = 8
    for n in range(8):
        assert (
            attempt(browser, shared, "wrong", f"198.51.100.{n}", n).status_code == 200
        )
    # Neighbours are other offices; only the per-page ceiling would join them.
    assert attempt(browser, shared, "kawa123", "198.51.100.200").status_code == 302


def test_ipv4_mapped_ipv6_counts_as_its_ipv4_address(browser, shared, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_IP_FAILURES = 4
    for n in range(4):
        assert attempt(browser, shared, "wrong", "203.0.113.5", n).status_code == 200
    response = attempt(browser, shared, "kawa123", "::ffff:203.0.113.5", 9)
    assert response.status_code == 429


def test_client_network():
    assert throttle.client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert throttle.client_network("2001:DB8:1:2::") == "2001:db8:1:2::/64"
    assert throttle.client_network("198.51.100.7") == "198.51.100.7"
    assert throttle.client_network("::ffff:198.51.100.7") == "198.51.100.7"
    assert throttle.client_network("not an address") == "not an address"
    assert throttle.client_network("") == ""


def test_page_ceiling_locks_password_attempts_from_anyone(
    browser, shared, index, settings
):
    """Many addresses (a botnet) against one password: after the page's ceiling
    nobody may try a password there for a short lock, the right one included."""
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_PAGE_FAILURES = 10
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_PAGE_LOCK = 2
    other = make_webinar(
        index,
        title="Other room",
        slug="other-room",
        room=room_blocks(),
        room_password="kawa123",
        allow_link_sharing=True,
    )
    for n in range(10):
        addr = f"2001:db8:{n:x}::1"  # each its own /64
        assert attempt(browser, shared, "wrong", addr, n).status_code == 200
    response = attempt(browser, shared, "kawa123", "192.0.2.77", 77)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 2
    # Another page is not locked.
    assert attempt(browser, other, "kawa123", "192.0.2.77", 78).status_code == 302
    time.sleep(2.2)
    assert attempt(browser, shared, "kawa123", "192.0.2.78", 79).status_code == 302


def test_page_ceiling_counts_password_failures_only(shared, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_PAGE_FAILURES = 3
    for n in range(5):
        throttle.record_failure("token", shared.pk, f"c{n}", f"192.0.2.{n}")
    assert not throttle.check("token", shared.pk, "fresh", "192.0.2.99").blocked
    assert not throttle.check("password", shared.pk, "fresh", "192.0.2.99").blocked


# --- a process-local cache is a deploy warning ------------------------------------


def test_process_local_throttle_cache_is_a_deploy_warning(settings):
    from wagtail_paidwebinar.checks import check_throttle_cache

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    found = check_throttle_cache(None)
    assert [w.id for w in found] == ["wagtail_paidwebinar.W002"]
    assert "throttle" in found[0].msg and "CACHES" in found[0].hint
    ids = [m.id for m in checks.run_checks(include_deployment_checks=True)]
    assert "wagtail_paidwebinar.W002" in ids
    assert "wagtail_paidwebinar.W002" not in [m.id for m in checks.run_checks()]

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/10",
        },
    }
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE = "shared"
    assert check_throttle_cache(None) == []
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE = "missing"
    assert [w.id for w in check_throttle_cache(None)] == ["wagtail_paidwebinar.W002"]


# --- several processes, one Redis -------------------------------------------------

WORKER = """
import sys
import django
django.setup()
from wagtail_paidwebinar import throttle
page, ip, count, tag = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
for n in range(count):
    throttle.record_failure("password", page, f"{tag}-{n}", ip)
state = throttle.check("password", page, f"{tag}-fresh", ip)
print("blocked" if state.blocked else "open")
"""


def run_workers(page: int, ip: str, count: int, tags: list[str]) -> list[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.throttle_redis_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example_site")]),
    }
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER, str(page), ip, str(count), tag],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(out.strip())
    return results


@pytest.mark.redis
def test_processes_sharing_a_redis_cache_share_the_counters():
    """Two server processes (separate interpreters) each see fewer failures than the
    ceiling; together they exceed it, and a third process is refused."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs a real Redis: set REDIS_URL=redis://127.0.0.1:6379/10")
    page = 10**9 + secrets.randbelow(10**6)  # no test page has this id
    ip = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}::1"
    ceiling = 50  # THROTTLE_IP_FAILURES default
    # Concurrently: 2 × 30 = 60 > 50, each alone below it.
    assert len(run_workers(page, ip, 30, ["a", "b"])) == 2
    assert run_workers(page, ip, 0, ["c"]) == ["blocked"]
    # Same /64, another address, another process: still the same counter.
    other = ip.replace("::1", ":ffff:ffff:ffff:ffff")
    assert run_workers(page, other, 0, ["d"]) == ["blocked"]
    # And a process-local cache would have let each process through.
    assert ceiling > 30


def test_unknown_throttle_cache_alias_is_an_error(settings):
    from wagtail_paidwebinar.checks import check_settings

    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE = "nowhere"
    errors = check_settings(None)
    assert [e.id for e in errors] == ["wagtail_paidwebinar.E001"]
    assert "THROTTLE_CACHE" in errors[0].msg
