# Hand-written to match what Django's makemigrations generates: the lease a run of the periodic
# task takes on the unclaimed checkout it refunds (unclaimed.begin_refund).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pretix_noderails', '0002_cartcheckout'),
    ]

    operations = [
        migrations.AddField(
            model_name='cartcheckout',
            name='refund_lease_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
