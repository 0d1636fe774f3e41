# Hand-written to match what Django's makemigrations generates for the models, every field
# attribute included (pretix's own makemigrations ignores some, e.g. blank; Django's does not).
# It depends on pretixbase 0246_bigint (2023) rather than on the newest pretixbase
# migration, so it also applies on the oldest supported pretix (<% package.pretix_min_version %>).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('pretixbase', '0246_bigint'),
    ]

    operations = [
        migrations.CreateModel(
            name='NodeRailsReference',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reference', models.CharField(db_index=True, max_length=190, unique=True)),
                ('order', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.order')),
                ('payment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.orderpayment')),
            ],
        ),
        migrations.CreateModel(
            name='ProcessedWebhookEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_id', models.CharField(max_length=190, unique=True)),
                ('event_type', models.CharField(max_length=190)),
                ('processed', models.DateTimeField(auto_now_add=True)),
                ('pretix_event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.event')),
            ],
        ),
    ]
