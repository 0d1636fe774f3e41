"""Fixtures of the production suite: one Stack (PostgreSQL, migrated pretix, NodeRails simulator,
several pretix web worker processes) for the whole session, stopped at the end whatever happened."""

import signal
import threading
from types import SimpleNamespace

import pytest

import harness
import pretix_testkit


def pytest_configure(config):
    # with_postgres.py stops the run with SIGTERM: turn it into pytest's Ctrl-C, which still
    # runs the fixtures' teardown (workers, simulator, temporary files).
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope='session')
def stack():
    s = harness.Stack(workers=3)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(autouse=True)
def _clean_simulator(stack):
    yield
    stack.sim.clear_faults()


def plugin(name=''):
    return pretix_testkit.plugin(harness.MODULE, name)


def in_thread(target, *args):
    """Run target(*args) in a thread with its own database connection; .join() returns its
    result or raises its exception."""
    box = SimpleNamespace(result=None, error=None)

    def run():
        from django.db import connection
        from django_scopes import scopes_disabled
        try:
            with scopes_disabled():
                box.result = target(*args)
        except BaseException as exc:  # handed to the test
            box.error = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout=60):
        thread.join(timeout)
        assert not thread.is_alive(), '%s did not finish' % target.__name__
        if box.error is not None:
            raise box.error
        return box.result
    thread.join_result = join
    return thread


def customer_request(stack, payment, session_id):
    """The pay/complete request of the customer who started session_id for payment."""
    from django.test import RequestFactory
    request = RequestFactory().post('/%s/%s/order/x/y/pay/%d/complete' % (harness.ORG, harness.EVENT, payment.pk))
    request.session = {plugin('payment').SESSION_KEY: {
        'event': stack.shop.event.pk, 'session_id': session_id, 'amount': '12.50', 'currency': 'USD',
        'testmode': False, 'payment': payment.pk,
    }}
    request.event = stack.shop.event
    return request


def execute_payment(stack, payment_pk, session_id):
    """What pretix's pay/complete view does: execute_payment on a fresh copy of the payment."""
    from pretix.base.models import OrderPayment
    payment = OrderPayment.objects.select_related('order').get(pk=payment_pk)
    provider = plugin('payment').NodeRailsPayment(stack.shop.event)
    return provider.execute_payment(customer_request(stack, payment, session_id), payment)
