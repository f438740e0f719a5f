"""The wheel carries templates, static files, migrations and compiled translations,
and a project's migrations are up to date."""

import subprocess
import sys
import venv
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    (path,) = out.glob("wagtail_paidwebinar-*.whl")
    return path


def test_wheel_contains_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        "wagtail_paidwebinar/templates/wagtail_paidwebinar/base.html",
        "wagtail_paidwebinar/templates/wagtail_paidwebinar/webinar_page.html",
        "wagtail_paidwebinar/templates/wagtail_paidwebinar/blocks/stream_embed.html",
        "wagtail_paidwebinar/static/wagtail_paidwebinar/css/webinar.css",
        "wagtail_paidwebinar/static/wagtail_paidwebinar/js/localtime.js",
        "wagtail_paidwebinar/migrations/0001_initial.py",
        "wagtail_paidwebinar/locale/pl/LC_MESSAGES/django.po",
        "wagtail_paidwebinar/locale/pl/LC_MESSAGES/django.mo",
    ]
    missing = [name for name in expected if name not in names]
    assert not missing, missing
    # Every template and migration in the tree made it into the wheel.
    package = ROOT / "wagtail_paidwebinar"
    for pattern in ("templates/**/*.html", "migrations/*.py", "static/**/*.*"):
        for path in package.glob(pattern):
            assert f"wagtail_paidwebinar/{path.relative_to(package)}" in names, path
    assert not any(name.startswith(("tests/", "example_site/")) for name in names)


def test_wheel_installs_in_clean_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
    )
    script = (
        "import importlib.resources as r, wagtail_paidwebinar as p;"
        "root = r.files(p);"
        "print(p.__version__);"
        "assert (root / 'templates/wagtail_paidwebinar/webinar_page.html').is_file();"
        "assert (root / 'locale/pl/LC_MESSAGES/django.mo').is_file();"
        "assert (root / 'static/wagtail_paidwebinar/css/webinar.css').is_file()"
    )
    result = subprocess.run(
        [str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("0.")


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # makemigrations --check exits 1 when changes are missing
        pytest.fail(f"Missing migrations:\n{out.getvalue()} ({exc})")
