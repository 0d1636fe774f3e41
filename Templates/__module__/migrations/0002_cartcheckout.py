# Hand-written to match what Django's makemigrations generates for CartCheckout (blank has no
# effect on the schema, so databases migrated before it was added here are the same). Like
# 0001_initial it needs nothing newer than pretixbase 0246_bigint (through 0001), so it
# also applies on the oldest supported pretix (<% package.pretix_min_version %>).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('<% package.module %>', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='CartCheckout',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('session_id', models.CharField(max_length=190, unique=True)),
                ('testmode', models.BooleanField(default=False)),
                ('amount', models.DecimalField(decimal_places=2, max_digits=13)),
                ('currency', models.CharField(max_length=10)),
                ('state', models.CharField(db_index=True, default='started', max_length=16)),
                ('payment_intent_id', models.CharField(blank=True, db_index=True, max_length=190)),
                ('refund_id', models.CharField(blank=True, max_length=190)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('paid', models.DateTimeField(blank=True, null=True)),
                ('refund_after', models.DateTimeField(blank=True, null=True)),
                ('refund_attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.event')),
            ],
        ),
    ]
