"""A customer pays in a real browser: fixtures.

Set-up, in this order (all on 127.0.0.1, every service on its own port, so every one is a
distinct origin):

1. At import time, before Django loads any app: ``pretix-forge build`` writes our sdist,
   and ``pip install --no-deps --target`` installs it into a private folder put first on
   sys.path (the shared venv's site-packages is left alone). pytest.ini deliberately has
   no DJANGO_SETTINGS_MODULE; it is set here, after the install, so pretix's INSTALLED_APPS
   come from the freshly installed distribution (pytest-django then calls django.setup()
   in its pytest_configure).
2. pytest-django's live_server runs the real pretix (threaded WSGI server, sqlite file).
3. A NodeRails simulator per test: REST API on one port, hosted checkout on another.
4. Headless Chromium through chromedriver, one fresh browser (fresh profile) per test.

pretix refuses outgoing requests to private addresses; that guard stays on and is
relaxed for 127.0.0.1 only (see ``allow_loopback_only``).
"""

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from browser_support import (  # noqa: E402
    CONFIG, DIST_NAME, EVENT, IDENTIFIER, LIVE, MODULE, ORG, PAGE_TIMEOUT, REPO, WAIT, WEBHOOK_SEGMENT, plugin,
)
from pretix_testkit import configure_provider, create_shop


# -- 1. our sdist into this interpreter, before Django starts ---------------------------------------------


def _forge_binary() -> Path:
    configured = os.environ.get('PRETIX_FORGE')
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO / '.build' / 'debug' / 'pretix-forge')
    for candidate in candidates:
        for path in (candidate, Path.cwd() / candidate, REPO / candidate):
            if path.is_file() and os.access(path, os.X_OK):
                return path.resolve()
    raise pytest.UsageError('pretix-forge binary not found (PRETIX_FORGE=%r); run `swift build` first' % configured)


def _run(cmd, timeout):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise pytest.UsageError('%s exited %d:\n%s\n%s' % (' '.join(map(str, cmd)), result.returncode,
                                                           result.stdout[-4000:], result.stderr[-4000:]))
    return result


def _setuptools_version():
    from importlib import metadata
    try:
        return tuple(int(p) for p in metadata.version('setuptools').split('.')[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _not_installed_from(sdist: Path, site: Path):
    """Why the plugin Python would import is not exactly our sdist's module files; None when it is.

    Every file of the module in the sdist must be installed byte for byte in our private
    ``site`` folder, and that copy must be the one that is imported and whose metadata
    (entry point) pretix sees: not a stale build, and not a pretix-noderails another suite
    installed into the shared venv."""
    from importlib.metadata import distribution, distributions
    ours = list(distributions(path=[str(site)]))
    if [d.metadata['Name'] for d in ours] != [DIST_NAME]:
        return '%s holds %r, not exactly %s' % (site, [d.metadata['Name'] for d in ours], DIST_NAME)
    direct_url = json.loads(ours[0].read_text('direct_url.json') or '{}')
    if Path(urlsplit(direct_url.get('url', '')).path) != sdist:
        return 'installed %s does not come from %s: %r' % (DIST_NAME, sdist, direct_url)
    # The first distribution of that name on sys.path is the one importlib.metadata (and so
    # pretix's plugin discovery) uses; it has to be ours, not the venv's.
    if Path(distribution(DIST_NAME).locate_file('')).resolve() != site.resolve():
        return '%s resolves to %s, not to %s' % (DIST_NAME, distribution(DIST_NAME).locate_file(''), site)
    spec = importlib.util.find_spec(MODULE)
    if spec is None or site.resolve() not in Path(spec.origin).resolve().parents:
        return '%s is imported from %s, not from %s' % (MODULE, spec and spec.origin, site)
    compared = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[1] != MODULE:
                continue
            installed = site.joinpath(*parts[1:])
            if not installed.is_file() or installed.read_bytes() != tar.extractfile(member).read():
                return '%s differs from %s in %s' % (installed, member.name, sdist)
            compared += 1
    if compared < 10:
        return 'only %d module files found in %s' % (compared, sdist)
    return None


def _install_plugin_from_sdist() -> dict:
    try:
        import django.apps
        if django.apps.apps.ready:
            raise pytest.UsageError(
                'Django was set up before the browser suite could install the plugin from the sdist. '
                'Do not set DJANGO_SETTINGS_MODULE (or --ds) for Tests/Browser; conftest.py sets it itself.')
    except ImportError:
        pass
    if MODULE in sys.modules:
        raise pytest.UsageError('%s was imported before the browser suite installed it' % MODULE)
    forge = _forge_binary()
    # A private folder per run: the sdist and the plugin installed from it never touch the
    # shared venv's site-packages, where the real-pretix suite (pip --force-reinstall) and
    # other suites install their own copy, possibly while this suite runs.
    work = Path(tempfile.mkdtemp(prefix='pretix-forge-e2e-'))
    try:
        return _build_and_install(forge, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _build_and_install(forge: Path, work: Path) -> dict:
    out, site = work / 'dist', work / 'site'
    build = [forge, 'build', '--config', CONFIG, '--out', out]
    overlay = os.environ.get('E2E_FORGE_TEMPLATES')  # e.g. a mutated checkout.js, to see the suite fail
    if overlay:
        build += ['--templates', Path(overlay).resolve()]
    _run(build, timeout=300)
    sdists = sorted(out.glob('*.tar.gz'))
    if len(sdists) != 1:
        raise pytest.UsageError('pretix-forge build wrote %d sdists into %s' % (len(sdists), out))
    sdist = sdists[0]
    # The generated pyproject needs setuptools>=77; without it here, pip builds in an isolated env.
    setuptools = _setuptools_version()
    isolation = ['--no-build-isolation'] if setuptools and setuptools >= (77, 0) else []
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-cache-dir', '--no-input',
          '--disable-pip-version-check', '-q', '--target', site, *isolation, sdist], timeout=600)
    # First on sys.path, so this copy shadows any pretix-noderails in the venv, for imports
    # and for pretix's entry-point discovery (importlib.metadata takes the first of a name).
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    problem = _not_installed_from(sdist, site)
    if problem:
        raise pytest.UsageError(problem)
    from importlib.metadata import version
    return {'forge': forge, 'work': work, 'sdist': sdist, 'site': site, 'version': version(DIST_NAME),
            'overlay': overlay}


INSTALLED = _install_plugin_from_sdist()
os.environ['DJANGO_SETTINGS_MODULE'] = 'browser_settings'
os.environ['DJANGO_LIVE_TEST_SERVER_ADDRESS'] = '127.0.0.1'
from django.conf import settings as _django_settings  # noqa: E402

if MODULE not in _django_settings.INSTALLED_APPS:  # forces the settings to load, too
    raise pytest.UsageError('%s is not in INSTALLED_APPS after installing %s' % (MODULE, INSTALLED['sdist']))


def pytest_unconfigure(config):
    shutil.rmtree(INSTALLED['work'], ignore_errors=True)


def pytest_report_header(config):
    header = ['browser suite: %s %s installed from %s (config %s)' % (DIST_NAME, INSTALLED['version'], INSTALLED['sdist'],
                                                                     CONFIG)]
    if INSTALLED['overlay']:
        header.append('browser suite: built with template overlay %s (E2E_FORGE_TEMPLATES)' % INSTALLED['overlay'])
    return header


@pytest.fixture(scope='session')
def installed():
    """What this run built and installed: forge binary, sdist, private site folder, overlay."""
    return SimpleNamespace(**INSTALLED)


@pytest.fixture(autouse=True)
def plugin_is_still_our_build():
    """Before and after every test: the installed files are still those of our sdist (another
    suite reinstalling the plugin into the shared venv mid-run would make results meaningless)."""
    def check():
        problem = _not_installed_from(INSTALLED['sdist'], INSTALLED['site'])
        if problem:
            pytest.fail('the plugin changed on disk during this run: ' + problem, pytrace=False)
    check()
    yield
    check()


# -- 2. pretix ------------------------------------------------------------------------------------


@pytest.fixture(scope='session', autouse=True)
def allow_loopback_only():
    """Let pretix's SSRF guard through to 127.0.0.1 and to nothing else private.

    pretix patches urllib3 at start-up (ALLOW_HTTP_TO_PRIVATE_NETWORKS is False here) and
    asks ``should_block_access`` for every resolved address; only 127.0.0.1 is let through,
    so the plugin really reaches the simulator while 10.x, 192.168.x, ::1 etc. stay blocked.
    """
    from pretix.helpers import monkeypatching
    from urllib3.connectionpool import HTTPConnectionPool
    assert not _django_settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS
    assert HTTPConnectionPool.ConnectionCls.__name__ == 'ProtectedHTTPConnection', \
        "pretix's SSRF guard is not installed; the relaxation below would be meaningless"
    original = monkeypatching.should_block_access

    def should_block_access(sa):
        if sa[0] == '127.0.0.1':
            return False, None
        return original(sa)

    monkeypatching.should_block_access = should_block_access
    assert should_block_access(('10.0.0.1', 80))[0] and should_block_access(('::1', 80, 0, 0))[0]
    yield
    monkeypatching.should_block_access = original


@pytest.fixture(scope='session', autouse=True)
def cheap_order_stack_inspection():
    """Under pytest (PYTEST_CURRENT_TEST), pretix inspects the call stack on every Order change
    to tell test code from its own code, with inspect.stack(), which reads the source of every
    frame: over a second per order in the live server. Only the frames' file names are used, so
    stack(context=0) gives the same answer without reading sources."""
    import inspect
    from pretix.base.models import _transactions
    original = _transactions.inspect
    _transactions.inspect = SimpleNamespace(stack=lambda context=1: inspect.stack(0))
    yield
    _transactions.inspect = original


@pytest.fixture(scope='session')
def pretix_url(live_server):
    """Base URL of the running pretix; SITE_URL follows it so pretix treats 127.0.0.1 as its own host."""
    _django_settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def shop(transactional_db, pretix_url):
    """Organizer, live USD event, one 12.50 ticket in a quota of 10, bank transfer as the other method."""
    from django_scopes import scopes_disabled
    shop = create_shop(MODULE, event_slug=EVENT, item_name='Conference ticket')
    with scopes_disabled():
        shop.organizer.enable_plugin('pretix.plugins.banktransfer')  # an event/organizer hybrid plugin
        shop.organizer.save()
        s = shop.event.settings
        # Nothing here is about e-mail, tickets or invoices; rendering those PDFs costs seconds per order.
        s.set('mail_attach_tickets', False)
        s.set('mail_attach_ical', False)
        s.set('invoice_generate', 'False')
        s.set('payment_banktransfer__enabled', True)
        s.set('payment_banktransfer_bank_details_type', 'other')
        s.set('payment_banktransfer_bank_details', 'Forge Bank, IBAN XX00 0000')
    shop.url = '%s/%s/%s/' % (pretix_url, ORG, EVENT)
    shop.webhook_url = '%s/%s/%s/%s/webhook/' % (pretix_url, ORG, EVENT, WEBHOOK_SEGMENT)
    return shop


@pytest.fixture
def sim(shop):
    """The NodeRails simulator: API and hosted checkout on two ports; webhooks over real HTTP to pretix."""
    from noderails_sim import Simulator
    conf = plugin('conf')
    s = Simulator(
        credentials={LIVE.app_id: LIVE.api_key}, separate_ui=True,
        webhook_url=shop.webhook_url, webhook_secret=LIVE.secret,
        signature_scheme=conf.SIGNATURE_PAYLOAD, timestamp_unit=conf.TIMESTAMP_UNIT,
    )
    s.start()
    yield s
    s.stop()


@pytest.fixture
def configured(shop, sim):
    """The provider enabled as an organiser would: simulator URLs as payment UI and API, live credentials."""
    configure_provider(shop.event, IDENTIFIER, sim)
    assert len({_origin(shop.url), _origin(sim.api_url), _origin(sim.ui_url)}) == 3
    return shop


def _origin(url):
    parts = urlsplit(url)
    return '%s://%s' % (parts.scheme, parts.netloc)


# -- 3. the browser --------------------------------------------------------------------------------


@pytest.fixture
def browser(request):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1280,1500', '--lang=en-US', '--no-first-run', '--disable-extensions'):
        options.add_argument(arg)
    # Explicit paths, failing loudly: without them Selenium Manager would try to download a
    # browser and driver (no internet here), and a missing browser must not turn into a skip.
    binary = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    driver_path = shutil.which('chromedriver') or '/usr/bin/chromedriver'
    if not binary or not os.access(driver_path, os.X_OK):
        pytest.fail('the browser suite needs Chromium and chromedriver (found browser %r, driver %r); '
                    'install them, e.g. `apt-get install chromium chromium-driver`' % (binary, driver_path),
                    pytrace=False)
    options.binary_location = binary
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    options.add_experimental_option('prefs', {'intl.accept_languages': 'en-US,en'})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(WAIT)
    # Recorded from the first script of every document (pretix's CSP cannot block this: it
    # is injected by the browser, not by the page): CSP violations and uncaught errors.
    driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': _RECORDER})
    yield driver
    try:
        driver.quit()
    except Exception:
        pass


_RECORDER = r"""
(function () {
    var log = window.__e2e = {csp: [], errors: []};
    window.addEventListener('securitypolicyviolation', function (e) {
        log.csp.push({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile || '',
                      line: e.lineNumber || 0});
    }, true);
    window.addEventListener('error', function (e) {
        if (e instanceof ErrorEvent) {
            log.errors.push(String(e.message) + ' @ ' + (e.filename || '') + ':' + (e.lineno || 0));
        }
    }, true);
    window.addEventListener('unhandledrejection', function (e) {
        log.errors.push('unhandled rejection: ' + String(e.reason));
    });
}());
"""


@dataclass
class Evil:
    """A page on yet another origin (its own port), for forged postMessages."""
    url: str
    origin: str


class _EvilHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = _EVIL_PAGE.encode('utf-8')
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# Opens the shop in a window it keeps a handle to, then keeps posting a forged
# "payment complete" for the session named in its URL (an attacker who learned it).
_EVIL_PAGE = r"""<!DOCTYPE html><html><head><title>Cheap tickets</title></head><body>
<h1>Cheap tickets</h1>
<button id="open" type="button">Buy at the official shop</button>
<p id="sent">0</p>
<script>
var params = new URLSearchParams(location.search);
var shop = null, sent = 0;
document.getElementById('open').addEventListener('click', function () {
    shop = window.open(params.get('target'), 'shop');
    setInterval(function () {
        if (!shop || shop.closed) { return; }
        shop.postMessage({type: 'noderails:checkout-complete', sessionId: params.get('session'),
                          intentId: 'pi_forged', status: 'PAID'}, '*');
        document.getElementById('sent').textContent = String(++sent);
    }, 200);
});
</script></body></html>"""


@pytest.fixture
def evil():
    server = ThreadingHTTPServer(('127.0.0.1', 0), _EvilHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    url = 'http://127.0.0.1:%d' % server.server_address[1]
    yield Evil(url=url + '/', origin=url)
    server.shutdown()
    server.server_close()


@pytest.fixture
def serve_static_override(monkeypatch):
    """Serve a different body for one of the plugin's static files (the live server's static handler).

    Used to give the browser a mutated checkout.js or checkout.css while everything else stays
    the installed plugin. Returns set(relative_path_under_static, text)."""
    from django.contrib.staticfiles import handlers
    from django.http import HttpResponse
    overrides = {}
    original = handlers.serve

    def serve(request, path, insecure=False, **kwargs):
        if path in overrides:
            # Browsers refuse a stylesheet or script served under the other's type (nosniff).
            kind = 'text/css' if path.endswith('.css') else 'text/javascript'
            response = HttpResponse(overrides[path], content_type=kind + '; charset=utf-8')
            response['Cache-Control'] = 'no-store'
            return response
        return original(request, path, insecure=insecure, **kwargs)

    monkeypatch.setattr(handlers, 'serve', serve)

    def set_override(relative, text):
        overrides[relative] = text
    return set_override
