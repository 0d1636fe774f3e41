"""Constants and small helpers shared by the browser suite's conftest, page object and tests."""

import importlib
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
E2E_DIR = REPO / 'build' / 'e2e'
MODULE = 'pretix_noderails'
DIST_NAME = 'pretix-noderails'
IDENTIFIER = 'noderails'
PUBLIC_NAME = 'Pay with crypto'

ORG, EVENT = 'forge', 'conf'
PRICE = Decimal('12.50')
LIVE = SimpleNamespace(app_id='app-live-0001', api_key='nr_live_sk_LIVEKEY', secret='whsec_LIVESECRET')

# Bounds for every wait in the suite (seconds).
PAGE_TIMEOUT = 30
WAIT = 10


def plugin(name=''):
    """The installed plugin module (or a submodule)."""
    return importlib.import_module(MODULE + ('.' + name if name else ''))


def installed_static(relative: str) -> Path:
    """A static file of the installed plugin (from our sdist), e.g. 'checkout.js'."""
    return Path(plugin().__file__).parent / 'static' / MODULE / relative


def wait_until(predicate, timeout=None, interval=0.05, message='condition'):
    """Poll ``predicate`` until it is truthy; AssertionError after ``timeout`` (default WAIT) seconds."""
    timeout = WAIT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, message))
        time.sleep(interval)
