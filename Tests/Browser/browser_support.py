"""Constants and small helpers shared by the browser suite's conftest, page object and tests."""

import importlib
import os
import time
import tomllib
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
E2E_DIR = REPO / 'build' / 'e2e'

# The variant under test: the stock config, or a branded one named by E2E_FORGE_CONFIG (with
# its template overlay in E2E_FORGE_TEMPLATES), e.g. Examples/blockfest/forge.toml.
CONFIG = Path(os.environ.get('E2E_FORGE_CONFIG') or REPO / 'Examples' / 'noderails.toml').resolve()
_VARIANT = tomllib.loads(CONFIG.read_text('utf-8'))
MODULE = _VARIANT['package']['module']
DIST_NAME = _VARIANT['package']['name']
IDENTIFIER = _VARIANT['provider']['identifier']
PUBLIC_NAME = _VARIANT['provider']['public_name']
WEBHOOK_SEGMENT = _VARIANT['provider'].get('webhook_path', IDENTIFIER)
BRANDING = _VARIANT.get('branding', {})

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
