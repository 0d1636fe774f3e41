"""Constants and small helpers shared by the browser suite's conftest, page object and tests."""

import os
import tomllib
from pathlib import Path

import pretix_testkit
from pretix_testkit import LIVE, ORG, PRICE  # noqa: F401

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

EVENT = 'conf'

# Bounds for every wait in the suite (seconds).
PAGE_TIMEOUT = 30
WAIT = 10


def plugin(name=''):
    """The installed plugin module (or a submodule)."""
    return pretix_testkit.plugin(MODULE, name)


def installed_static(relative: str) -> Path:
    """A static file of the installed plugin (from our sdist), e.g. 'checkout.js'."""
    return Path(plugin().__file__).parent / 'static' / MODULE / relative


def wait_until(predicate, timeout=WAIT, message='condition'):
    """Poll ``predicate`` until it is truthy, at most ``timeout`` seconds (a page, not a database, is watched)."""
    return pretix_testkit.wait_until(predicate, timeout, interval=0.05, message=message)
