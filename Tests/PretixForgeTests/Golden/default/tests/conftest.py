"""Test set-up for the unit tests and for the tests inside pretix.

The unit tests import the Django-free modules (client, events, webhook) and need only pytest.
test_in_pretix.py needs pretix and pytest-django: where both are installed, Django is set up
here with pretix's test settings, as pytest-django allows from pytest_configure.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# Make the plugin package importable without installing it (any pytest version).
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PRETIX_AVAILABLE = all(importlib.util.find_spec(name) is not None for name in ('pretix', 'pytest_django'))
# Set by CI's integration job: there a missing pretix is a broken set-up, not a reason to skip.
REQUIRE_PRETIX = os.environ.get('PLUGIN_TESTS_REQUIRE_PRETIX') == '1'


def pytest_configure(config):
    if not PRETIX_AVAILABLE:
        if REQUIRE_PRETIX:
            raise pytest.UsageError('PLUGIN_TESTS_REQUIRE_PRETIX=1, but pretix or pytest-django is not installed '
                                    '(pip install pretix pytest-django)')
        return
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'pretix.testutils.settings')
    import django
    from django.conf import settings

    # The tests talk to HTTP servers on 127.0.0.1 (test_client.py's, and the fake NodeRails of
    # test_in_pretix.py), which pretix's guard against server-side request forgery refuses.
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = True
    django.setup()
