"""Device credential rotation (previous secret hash, rotation time), an opaque
public id for every link (existing links get one; their old ``<pk>.<mac>`` tokens
keep working until re-issued), and the "used from two browsers" event."""

from django.db import migrations, models

import wagtail_paidwebinar.tokens


def fill_public_ids(apps, schema_editor):
    PersonalLink = apps.get_model("wagtail_paidwebinar", "PersonalLink")
    batch = []
    for link in PersonalLink.objects.filter(public_id="").only("pk").iterator():
        link.public_id = wagtail_paidwebinar.tokens.new_public_id()
        batch.append(link)
        if len(batch) >= 1000:
            PersonalLink.objects.bulk_update(batch, ["public_id"])
            batch = []
    PersonalLink.objects.bulk_update(batch, ["public_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_paidwebinar", "0006_signature_help_texts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accessevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("claim", "Joined (link claimed)"),
                    ("entry", "Entered the room"),
                    ("password_ok", "Room password accepted"),
                    ("refused_in_use", "Refused: link in use on another device"),
                    ("refused_invalid", "Refused: invalid link"),
                    ("refused_revoked", "Refused: revoked link"),
                    ("refused_expired", "Refused: expired link"),
                    ("password_failed", "Wrong room password"),
                    ("reuse_detected", "Refused: used from two browsers"),
                ],
                max_length=32,
                verbose_name="event",
            ),
        ),
        migrations.AddField(
            model_name="linkdevice",
            name="previous_secret_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="linkdevice",
            name="rotated_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="credential rotated at"
            ),
        ),
        migrations.AddIndex(
            model_name="linkdevice",
            index=models.Index(
                fields=["previous_secret_hash"], name="paidwebinar_device_previous"
            ),
        ),
        migrations.AddField(
            model_name="personallink",
            name="public_id",
            field=models.CharField(default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="personallink",
            name="public_id",
            field=models.CharField(
                default=wagtail_paidwebinar.tokens.new_public_id,
                editable=False,
                max_length=16,
                unique=True,
            ),
        ),
    ]
