"""A scratch database for a benchmark: PostgreSQL when DATABASE_URL says so, else a
SQLite file in the temp folder. Never touches any other database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def setup_database(name: str) -> tuple[str, str | None]:
    """Point DATABASE_URL at a fresh scratch database ``name``; returns
    ``(backend, the original PostgreSQL URL or None)``."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        _pg_admin(url, f"DROP DATABASE IF EXISTS {name}")
        _pg_admin(url, f"CREATE DATABASE {name}")
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))
        return "postgresql", url
    path = Path(tempfile.gettempdir()) / f"{name}.sqlite3"
    path.unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return "sqlite", None


def drop_database(name: str, pg_url: str | None) -> None:
    """Drop the scratch PostgreSQL database (SQLite files are left in /tmp)."""
    if pg_url:
        _pg_admin(pg_url, f"DROP DATABASE IF EXISTS {name}")
