"""Test settings plus a shared Redis cache for the throttle (REDIS_URL), for the
processes started by tests/test_gate_throttle.py."""

import os

from tests.settings import *  # noqa: F403

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"),
    },
}
WAGTAIL_PAIDWEBINAR_THROTTLE_CACHE = "throttle"
