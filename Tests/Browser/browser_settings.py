"""Django settings for the browser suite: pretix's own test settings, made browser-friendly.

* The test database is an sqlite *file*: pytest-django's live server then gives every
  request thread its own connection (an in-memory database would be one connection shared
  by the browser's parallel requests, the simulator's webhooks and the test itself).
* pretix's {% compress %} blocks are compiled and bundled once per run (SCSS -> CSS, one JS
  bundle) into the temporary data dir, as a production pretix serves them, so screenshots show
  the styled shop and pages load fast; pretix's test settings switch all of that off.
"""

import os

from pretix.testutils.settings import *  # noqa: F401,F403
from pretix.testutils.settings import CACHES, COMPRESS_PRECOMPILERS_ORIGINAL, DATA_DIR, DATABASES

DATABASES['default']['TEST'] = {'NAME': os.path.join(DATA_DIR, 'browser-e2e.sqlite3')}
# A throwaway database: no fsync, readers never wait for the writer.
DATABASES['default']['OPTIONS'] = dict(DATABASES['default'].get('OPTIONS', {}),
                                       init_command='PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;')

COMPRESS_PRECOMPILERS = COMPRESS_PRECOMPILERS_ORIGINAL
COMPRESS_ENABLED, COMPRESS_OFFLINE = True, False
COMPRESS_ROOT = os.path.join(DATA_DIR, 'compress')
CACHES = dict(CACHES, compress={'BACKEND': 'django.core.cache.backends.locmem.LocMemCache', 'LOCATION': 'e2e-compress'})
COMPRESS_CACHE_BACKEND = 'compress'

# The live server answers on 127.0.0.1; the conftest sets the port once it is known.
SITE_URL = 'http://127.0.0.1'
