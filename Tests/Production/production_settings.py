"""pretix's own production settings (pretix.settings, configured by PRETIX_CONFIG_FILE) with two test tweaks.

Everything that matters for exactly-once processing is pretix's production default: PostgreSQL,
advisory locks (pretix.base.services.locking), no Celery (tasks run inline), no shared cache.
"""

from pretix.settings import *  # noqa: F401,F403

# Order confirmations and payment mails are rendered and sent, but into memory, not to SMTP.
EMAIL_BACKEND = EMAIL_CUSTOM_SMTP_BACKEND = 'django.core.mail.backends.locmem.EmailBackend'  # noqa: F405

# serve.py answers every request in a fresh thread; a persistent per-thread connection would be
# left behind by each finished thread, so connections are closed at the end of each request.
DATABASES['default']['CONN_MAX_AGE'] = 0  # noqa: F405


class _NoMigrations:
    """Tables are created straight from the models (migrate --run-syncdb), as pretix's own test
    suite does: replaying pretix's ~300 migrations takes minutes on a busy CI machine. The
    plugin's migration is checked by the real-pretix suite (makemigrations --check)."""

    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
