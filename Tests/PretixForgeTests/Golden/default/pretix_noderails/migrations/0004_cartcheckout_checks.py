# Hand-written to match what Django's makemigrations generates: the periodic task asks NodeRails
# about checkouts still "started" (unclaimed.ask_about_started) and remembers when to ask next.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pretix_noderails', '0003_cartcheckout_refund_lease'),
    ]

    operations = [
        migrations.AddField(
            model_name='cartcheckout',
            name='checks',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='cartcheckout',
            name='next_check',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='cartcheckout',
            name='unanswered_reported',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
