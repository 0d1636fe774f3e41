"""Django settings of the demo: pretix's production settings (pretix.cfg in the throwaway
folder, sqlite, DEBUG off) with what a throwaway shop on one machine needs on top."""

import os

from pretix.settings import *  # noqa: F401,F403
from pretix.settings import CACHES, DATABASES, LOGGING, STORAGES


class _NoMigrations:
    """Tables come straight from the models (migrate --run-syncdb), as in pretix's own test
    suite: replaying pretix's several hundred migrations takes over two minutes on sqlite,
    creating the tables about a second. The plugin's migrations are checked by the test
    suites (makemigrations --check), not here."""

    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()

# The browser's requests, the simulator's webhooks and the status poller write at once: WAL
# lets readers go on while one writes, and a throwaway database needs no fsync.
DATABASES['default']['OPTIONS'] = dict(DATABASES['default'].get('OPTIONS', {}), timeout=30,
                                       init_command='PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;')

# pretix without redis uses a dummy cache; a real one (as in production) keeps settings
# lookups cheap and makes the plugin's status-poll cache and rate limit behave as deployed.
CACHES['default'] = {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache', 'LOCATION': 'forge-demo'}

# Static files straight from the installed packages, without `collectstatic`'s hashed names.
STORAGES['staticfiles']['BACKEND'] = 'django.contrib.staticfiles.storage.StaticFilesStorage'

# Stylesheets are compiled on first use (no `pretix rebuild` step). Compiled files and their
# index live in pretix-forge's cache folder, so only the first demo on a machine waits for them.
COMPRESS_ENABLED, COMPRESS_OFFLINE = True, False
COMPRESS_ROOT = os.environ['FORGE_DEMO_COMPRESS_DIR']
CACHES['compress'] = {'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache',
                      'LOCATION': os.path.join(COMPRESS_ROOT, 'index')}
COMPRESS_CACHE_BACKEND = 'compress'

# Order confirmations are rendered but kept in memory: there is no mail server to send them to.
EMAIL_BACKEND = EMAIL_CUSTOM_SMTP_BACKEND = 'django.core.mail.backends.locmem.EmailBackend'

# The terminal shows warnings and errors; pretix.log in the throwaway folder has the rest.
LOGGING['handlers']['console']['level'] = 'WARNING'
# Without a broker pretix runs its tasks inline; kombu still warns about the missing host each time.
LOGGING['loggers']['kombu'] = {'level': 'ERROR'}
