# A new callback delivery no longer writes into two indexes: its ``interaction`` and its
# ``processed_at`` are empty until it is processed, and their indexes now hold only filled values.
# ``scout_delivery_pending`` served the cut-off of pruning (now ``scout_delivery_ended``) and the
# abandonment of old pending deliveries (now ``scout_delivery_state``).

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

FK_COLUMN = "interaction_id"


def _plain_fk_indexes(apps: Any, schema_editor: Any) -> tuple[Any, list[str]]:
    """The delivery model and the names of the indexes on its ``interaction_id`` alone that are
    not the partial ``scout_delivery_interaction`` (the one Django made for the foreign key)."""
    model = apps.get_model("django_scout", "CallbackDelivery")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    names = [
        name
        for name, info in constraints.items()
        if info["columns"] == [FK_COLUMN]
        and info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and name != "scout_delivery_interaction"
    ]
    return model, names


def drop_fk_index(apps: Any, schema_editor: Any) -> None:
    """Drop the foreign key's own index, without remaking the table (as ``AlterField`` would on
    SQLite). Kept on a database without partial indexes, where it is the only one."""
    if not schema_editor.connection.features.supports_partial_indexes:
        return
    model, names = _plain_fk_indexes(apps, schema_editor)
    quote = schema_editor.quote_name
    for name in names:
        schema_editor.execute(
            schema_editor.sql_delete_index
            % {"table": quote(model._meta.db_table), "name": quote(name)}
        )


def create_fk_index(apps: Any, schema_editor: Any) -> None:
    """Give the foreign key its own index again (the reverse of :func:`drop_fk_index`)."""
    model, names = _plain_fk_indexes(apps, schema_editor)
    if names:
        return
    # The statement (and so the name) Django gives a foreign key's index.
    field = model._meta.get_field("interaction")
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("django_scout", "0009_stream_idle"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="callbackdelivery",
            index=models.Index(
                condition=models.Q(("interaction__isnull", False)),
                fields=["interaction"],
                name="scout_delivery_interaction",
            ),
        ),
        migrations.AddIndex(
            model_name="callbackdelivery",
            index=models.Index(
                condition=models.Q(("processed_at__isnull", False)),
                fields=["processed_at"],
                name="scout_delivery_ended",
            ),
        ),
        migrations.RemoveIndex(
            model_name="callbackdelivery",
            name="scout_delivery_pending",
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="callbackdelivery",
                    name="interaction",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deliveries",
                        to="django_scout.interaction",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_fk_index, create_fk_index)],
        ),
    ]
