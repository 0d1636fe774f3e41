"""Fixtures of the cluster suite: one Cluster (cluster.py) for the whole session, stopped at the end
whatever happened; a customer's browser as a plain HTTP client against gunicorn."""

import re
import signal
from urllib.parse import urljoin

import pytest
import requests

import cluster as topology
import harness
import pretix_testkit


def pytest_configure(config):
    # with_postgres.py stops the run with SIGTERM: turned into pytest's Ctrl-C, which still runs
    # the fixtures' teardown (gunicorn, celery, redis, simulator, folders).
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope='session')
def cluster():
    c = topology.Cluster()
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(autouse=True)
def _clean_simulator(cluster):
    yield
    cluster.sim.clear_faults()
    cluster.sim.configure(queue_webhooks=False)
    for worker in cluster.celery:  # a test that killed one leaves the next a full cluster
        if not worker.alive():
            cluster.start_celery(cluster.celery.index(worker))
    if not cluster.redis.alive():
        cluster.start_redis()


def plugin(name=''):
    return pretix_testkit.plugin(harness.MODULE, name)


class Browser:
    """The customer's browser: cookies, CSRF token and redirects over real HTTP to gunicorn."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.http = requests.Session()
        self.base = '%s/%s/%s' % (cluster.url, harness.ORG, harness.EVENT)

    def get(self, path, **kwargs):
        return self.http.get(self._url(path), timeout=60, **kwargs)

    def post(self, path, data=None, **kwargs):
        if 'pretix_csrftoken' not in self.http.cookies:
            self.get('/')
        data = dict(data or {}, csrfmiddlewaretoken=self.http.cookies['pretix_csrftoken'])
        return self.http.post(self._url(path), data=data, timeout=60, headers={'Referer': self.base + '/'},
                              **kwargs)

    def _url(self, path):
        return path if path.startswith('http') else self.base + path

    def to_payment_step(self):
        """Cart, contact details, NodeRails chosen: returns the checkout session NodeRails opened."""
        sessions = set(list(self.cluster.sim.sessions))
        # Adding to the cart is a celery task too: going on before it is done races the worker,
        # which is slow after a redis restart (it reconnects to its broker first).
        self.post_and_wait('/cart/add', {'item_%d' % self.cluster.shop.item.pk: '1'})
        r = self.post('/checkout/questions/', {'email': 'buyer@example.org', 'email_repeat': 'buyer@example.org'})
        assert r.status_code == 200 and '/checkout/payment/' in r.url, (r.status_code, r.url)
        r = self.post('/checkout/payment/', {'payment': harness.IDENTIFIER})
        assert r.status_code == 200 and '/checkout/confirm/' in r.url, (r.status_code, r.url)
        opened = set(list(self.cluster.sim.sessions)) - sessions
        assert len(opened) == 1, opened
        return opened.pop()

    def place_order(self, timeout=90):
        """POST Place order: (the waiting URL, where pretix sends the browser next)."""
        return self.post_and_wait('/checkout/confirm/', timeout=timeout)

    def post_and_wait(self, path, data=None, timeout=90):
        """POST an action pretix hands to celery and wait on ?async_id=, as pretix's waiting page
        does: (the waiting URL, where pretix sends the browser next)."""
        r = self.post(path, data, allow_redirects=False)
        assert r.status_code == 302 and 'async_id=' in r.headers['Location'], (r.status_code, r.headers)
        waited = r.headers['Location']
        r = pretix_testkit.wait_until(lambda: self._done_waiting(waited), timeout=timeout, interval=0.2,
                                      message='the celery worker to finish %s' % path)
        return waited, urljoin(r.url, r.headers['Location'])

    def follow(self, location):
        """Where pretix sends the browser after placing the order: pay/complete, then the order page."""
        return self.http.get(location, timeout=60)

    def _done_waiting(self, location):
        r = self.http.get(urljoin(self.base, location), timeout=60, allow_redirects=False)
        return r if r.status_code == 302 and 'async_id=' not in r.headers['Location'] else None

    def status(self):
        return self.get('/%s/status/' % harness.WEBHOOK_SEGMENT, headers={'Connection': 'close'})


def order_code(url):
    match = re.search(r'/order/([A-Z0-9]+)/', url)
    assert match, url
    return match.group(1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the servers' logs: the cluster's folder is gone afterwards."""
    outcome = yield
    report = outcome.get_result()
    stack = item.funcargs.get('cluster') if hasattr(item, 'funcargs') else None
    if report.failed and stack is not None and stack.root:
        report.sections.append(('cluster logs', stack.logs()))
