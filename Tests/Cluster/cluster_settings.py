"""The production suite's settings (pretix.settings, PostgreSQL, mail into memory), for pages too.

pretix's deployment collects and compresses its static files once per release (`pretix rebuild`,
minutes), and its pages then look their files up in that manifest; without it every HTML page
would fail, so the cluster renders them with plain static URLs and no offline compression.
"""

from production_settings import *  # noqa: F401,F403

COMPRESS_ENABLED = COMPRESS_OFFLINE = False
STORAGES = dict(STORAGES, staticfiles={  # noqa: F405
    'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'})
