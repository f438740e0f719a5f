"""The plugin's migrations apply on every supported Wagtail (7.4 LTS and 8.x).

CI runs the whole suite (which migrates a fresh database) on Wagtail 7.4 and on
Wagtail 8; these tests name the two mistakes that broke Wagtail 7.4 before, so they
fail on whichever Wagtail runs them.
"""

from pathlib import Path

from django.db import connection
from django.db.migrations.loader import MigrationLoader

MIGRATIONS = Path(__file__).resolve().parent.parent / "wagtail_paidwebinar/migrations"

# The newest migration of each Wagtail app in Wagtail 7.4, the oldest Wagtail we
# support: depending on anything newer makes `migrate` fail there with
# NodeNotFoundError.
OLDEST_WAGTAIL_LATEST = {
    "wagtailcore": "0097_baselogentry_uuid_action_timestamp_indexes",
    "wagtailimages": "0027_image_description",
    "wagtaildocs": "0014_alter_document_file_size",
}


def _number(name: str) -> int:
    return int(name.split("_", 1)[0])


def test_dependencies_exist_in_oldest_supported_wagtail():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = [
        migration
        for (app, _name), migration in loader.disk_migrations.items()
        if app == "wagtail_paidwebinar"
    ]
    assert ours
    for migration in ours:
        for app, name in migration.dependencies:
            if app in OLDEST_WAGTAIL_LATEST:
                assert _number(name) <= _number(OLDEST_WAGTAIL_LATEST[app]), (
                    f"{migration.name} depends on {app}.{name}, "
                    "which Wagtail 7.4 does not have"
                )


def test_no_setting_that_only_newer_wagtail_defines():
    # settings.WAGTAIL_PAGE_MODEL exists from Wagtail 8 (swappable Page); on 7.4 it
    # raises AttributeError while the migration module is imported.
    for path in MIGRATIONS.glob("0*.py"):
        code = [
            line
            for line in path.read_text().splitlines()
            if not line.lstrip().startswith("#")
        ]
        assert not any("WAGTAIL_PAGE_MODEL" in line for line in code), path.name


def test_graph_is_consistent_and_fully_applied(db):
    loader = MigrationLoader(connection)
    loader.check_consistent_history(connection)
    ours = {key for key in loader.graph.nodes if key[0] == "wagtail_paidwebinar"}
    leaves = [key for key in loader.graph.leaf_nodes() if key in ours]
    assert len(leaves) == 1, leaves
    assert ours <= set(loader.applied_migrations)
