# A new callback delivery no longer writes into the ``(state, received_at)`` index: it now holds
# only deliveries whose processing ended (``processed_at`` filled, ``state`` no longer pending).
# Pending deliveries, all of them new or due again, are read off ``scout_delivery_due``.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_scout", "0010_delivery_insert_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="callbackdelivery",
            index=models.Index(
                condition=models.Q(("processed_at__isnull", False)),
                fields=["state", "received_at"],
                name="scout_delivery_outcome",
            ),
        ),
        migrations.RemoveIndex(
            model_name="callbackdelivery",
            name="scout_delivery_state",
        ),
    ]
