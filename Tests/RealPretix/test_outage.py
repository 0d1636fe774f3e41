"""NodeRails unavailable, failing or slower than the plugin's timeout.

Expected everywhere: a clear message for the customer, no traceback, the cart/order and
payment survive, and nothing is charged twice (no second checkout session for the same
attempt; a later webhook settles the original payment).
"""

import time

import pytest
from realpretix import age_for_reconciliation, plugin, run_periodic_tasks, wait_until
from django.contrib import messages
from django.core.cache.backends.locmem import LocMemCache
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db

TIMEOUT = 1.0   # the plugin's rendered timeout is shrunk to this for these tests
SLOW = 8.0      # the simulator answers after this long (its sleeping threads are interrupted at teardown)
# A request that waited for the slow answer would take >= SLOW; anything clearly below proves the
# plugin gave up at its timeout (generous margin: page rendering on a loaded CI box).
GAVE_UP = SLOW - 2.5


# What the plugin tells the customer when it cannot open a checkout (payment.py, _start_session).
UNAVAILABLE = ('The crypto payment service is currently unavailable. '
               'Please try again in a few minutes or choose another payment method.')


def _payment_step_error(customer, r):
    """The customer stays on the payment step and sees why: pretix renders the step again (its
    answer when checkout_prepare returns False) with the plugin's message, and nothing else."""
    assert r.status_code == 200, (r.status_code, r.get('Location'))
    page = r.content.decode()
    assert 'name="payment"' in page, 'not the payment step'
    # Its only error; pretix's notes from earlier steps ("added to your cart") may come with it.
    assert [str(m) for m in r.context['messages'] if m.level == messages.ERROR] == [UNAVAILABLE], customer.messages(r)
    assert UNAVAILABLE in page, 'the message is not on the page the customer sees'
    assert 'Traceback' not in page


def test_session_creation_failure_keeps_customer_on_payment_step(customer, sim, http_timeout):
    """503, 500, dropped connection, slower than the timeout: each time the customer stays on the
    payment step with a clear message; once NodeRails is back the same cart goes through."""
    http_timeout(TIMEOUT)
    customer.add_to_cart()
    customer.questions()
    faults = {
        '503': lambda: sim.fail_next('create_session', status=503),
        '500': lambda: sim.fail_next('create_session', status=500),
        'dropped': lambda: sim.drop_next('create_session'),
        'timeout': lambda: sim.delay_next('create_session', SLOW),
    }
    for name, inject in faults.items():
        inject()
        started = time.monotonic()
        r = customer.choose_payment()
        elapsed = time.monotonic() - started
        assert elapsed < GAVE_UP, '%s: the worker waited %.1fs' % (name, elapsed)
        _payment_step_error(customer, r)
        assert customer.state is None, name
    r = customer.choose_payment()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/')
    assert customer.state['session_id'] in sim.sessions


def test_session_creation_with_noderails_down(customer, sim):
    customer.add_to_cart()
    customer.questions()
    sim.stop()
    r = customer.choose_payment()
    _payment_step_error(customer, r)
    assert customer.state is None


@pytest.mark.parametrize('fault', ['503', 'timeout', 'down'])
def test_verification_failure_keeps_order_and_payment_and_webhook_settles(customer, sim, http_timeout, fault):
    http_timeout(TIMEOUT)
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid)           # the customer paid in the iframe ...
    r, order = customer.place_order()
    if fault == '503':           # ... but NodeRails cannot confirm it right now
        sim.fail_next('get_session', status=503, count=None)
    elif fault == 'timeout':
        sim.delay_next('get_session', SLOW, count=None)
    started = time.monotonic()
    if fault == 'down':
        sim_url = sim.api_url
        sim_port = int(sim_url.rsplit(':', 1)[1])
        with scopes_disabled():
            # point the plugin at a closed port rather than stopping the simulator (webhooks come later)
            from realpretix import setting_key
            order.event.settings.set(setting_key('api_base_url'), 'http://127.0.0.1:%d' % _closed_port(sim_port))
    page = customer.follow(r)
    elapsed = time.monotonic() - started
    assert elapsed < GAVE_UP, 'execute_payment waited %.1fs' % elapsed
    msgs = customer.messages(page)
    assert msgs and any('automatically' in m or 'could not verify' in m.lower() for m in msgs), msgs
    assert 'Traceback' not in page.content.decode()
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert order.status == 'n', 'order must survive'
        assert payment.state in ('created', 'pending'), 'payment must survive for the webhook'
    sim.clear_faults()
    # nothing was charged twice: still one checkout session, no refund, no second payment
    assert len(sim.sessions) == 1 and sim.refunds == {}
    with scopes_disabled():
        assert order.payments.count() == 1
    # NodeRails recovers and delivers the capture: the original payment is confirmed
    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
        assert order.status == 'p' and payment.state == 'confirmed'


def _closed_port(avoid):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    assert port != avoid
    return port


def test_status_poll_during_outage_reports_unavailable(customer, sim):
    import re
    customer.to_confirm()
    status_url = re.search(r'data-status-url="([^"]+)"', customer.confirm_page().content.decode()).group(1)
    sim.fail_next('get_session', status=503, count=None)
    r = customer.client.get(status_url)
    assert r.status_code in (200, 503)
    assert r.json()['paid'] is False and r.json()['status'] == 'UNAVAILABLE'
    polls_before = len(sim.requests_for('get_session'))
    for _ in range(5):
        customer.client.get(status_url)
    # polls during an outage are served from the cache, not multiplied upstream
    assert len(sim.requests_for('get_session')) - polls_before <= 1


def test_placing_order_twice_does_not_create_second_session(customer, sim):
    """Back button + 'Place order' again: pretix refuses the empty cart; NodeRails sees no new session."""
    customer.to_confirm()
    sim.mark_paid(customer.state['session_id'])
    r, order = customer.place_order()
    customer.complete(r)
    customer.client.post(customer.url('/checkout/confirm/'))
    assert len(sim.requests_for('create_session')) == 1
    with scopes_disabled():
        from pretix.base.models import Order
        assert Order.objects.count() == 1


def test_client_uses_the_rendered_timeout_read_at_call_time(customer, sim, http_timeout):
    """Guard for the outage tests: the client the provider builds carries conf.HTTP_TIMEOUT_SECONDS,
    read when it is built, so http_timeout() really shortens it."""
    provider = plugin('payment').NodeRailsPayment(customer.shop.event)
    assert provider.client(False).timeout == plugin('conf').HTTP_TIMEOUT_SECONDS == 10
    http_timeout(TIMEOUT)
    assert provider.client(False).timeout == TIMEOUT


def _pending_order_paid_without_webhook(customer, sim):
    order, _payment, sid = customer.pending_order()
    sim.mark_paid(sid)     # paid, but no webhook is sent
    sim.clear_requests()
    return order, sid


def test_lost_webhook_is_reconciled_by_periodic_task(customer, sim):
    """NodeRails captured the payment but its webhook never arrived: pretix's periodic task settles it."""
    order, sid = _pending_order_paid_without_webhook(customer, sim)
    with scopes_disabled():
        age_for_reconciliation(order.payments.get())
    run_periodic_tasks()
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p' and order.payments.get().state == 'confirmed'
    assert len(sim.sessions) == 1


def test_fresh_pending_payment_is_left_to_its_webhook(customer, sim):
    """Younger than RECONCILE_MIN_AGE, a pending payment is not asked about: its webhook is still due."""
    order, sid = _pending_order_paid_without_webhook(customer, sim)
    run_periodic_tasks()
    assert not sim.requests_for('get_session'), 'NodeRails was asked about a payment its webhook will settle'
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'n' and order.payments.get().state == 'pending'


# -- the whole call has one deadline ------------------------------------------------------------------


def test_dripping_upstream_is_cut_off_at_the_deadline(customer, sim, http_timeout):
    """NodeRails answers, one byte at a time: no single read ever waits long, the whole answer would
    take over a minute. The plugin's timeout is the call's: the customer hears back at the deadline."""
    http_timeout(TIMEOUT)
    customer.add_to_cart()
    customer.questions()
    sim.drip_next('create_session', interval=0.3)
    started = time.monotonic()
    r = customer.choose_payment()
    elapsed = time.monotonic() - started
    assert elapsed < GAVE_UP, 'the worker waited %.1fs for a dripping answer' % elapsed
    _payment_step_error(customer, r)
    assert customer.state is None


# -- Idempotency-Key of the checkout session: derived from the cart and the amount -----------------------


def test_retried_checkout_creation_gets_the_first_session_back(customer, sim, http_timeout):
    """NodeRails created the session but its answer came after the deadline; the customer tries again.
    The same cart and amount send the same Idempotency-Key: NodeRails returns the session it made
    instead of opening a second one."""
    http_timeout(TIMEOUT)
    customer.add_to_cart(count=2)
    customer.questions()
    held = sim.hold_next('create_session')
    _payment_step_error(customer, customer.choose_payment())
    held.release()
    assert wait_until(lambda: len(sim.sessions) == 1, timeout=10), 'NodeRails never made the first session'
    r = customer.choose_payment()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/'), customer.messages(customer.follow(r))
    first, second = sim.requests_for('create_session')
    assert first.header('Idempotency-Key') == second.header('Idempotency-Key')
    assert len(sim.sessions) == 1 and customer.state['session_id'] in sim.sessions
    assert customer.confirm_page().status_code == 200


def test_choosing_the_method_again_keeps_the_checkout_until_it_can_no_longer_be_paid(customer, sim):
    """Back to the payment step and the same method again: the same checkout, so nothing can be paid
    twice. Once it expired, a new one for the same amount."""
    customer.to_confirm()
    first = customer.state['session_id']
    customer.choose_payment()
    assert customer.state['session_id'] == first and len(sim.sessions) == 1
    sim.expire(first)
    customer.choose_payment()
    second = customer.state['session_id']
    assert second != first and sim.session(second)['status'] == 'OPEN'
    assert '/checkout/%s"' % second in customer.confirm_page().content.decode()
    customer.choose_payment()
    assert customer.state['session_id'] == second and len(sim.sessions) == 2
    sim.mark_paid(second)
    r, order = customer.place_order()
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p'


# -- reconciliation reaches every open payment -----------------------------------------------------------


def test_reconciliation_reaches_every_open_payment_within_bounded_runs(configured, sim):
    """More open payments than one run asks about, the oldest never paid: the newest, paid but with
    its webhook lost, is still settled within ceil(open / batch) runs."""
    from realpretix import LIVE, make_order
    batch = plugin('signals').RECONCILE_BATCH
    payments = []
    for _ in range(batch + 10):
        session = sim.create_session('12.50', app_id=LIVE.app_id)
        _order, payment = make_order(configured, state='pending')
        payment.info_data = {'session_id': session['sessionId']}
        payment.save(update_fields=['info'])
        payments.append(payment)
    newest = payments[-1]
    sim.mark_paid(newest.info_data['session_id'])
    age_for_reconciliation(*payments)
    for _ in range(-(-len(payments) // batch)):
        run_periodic_tasks()
    with scopes_disabled():
        newest.refresh_from_db()
        assert newest.state == 'confirmed' and newest.order.status == 'p'
        assert all(p.state == 'pending' for p in type(newest).objects.filter(pk__in=[p.pk for p in payments[:-1]]))


# -- the status poll's cache and rate limit, without redis or memcached -----------------------------------


def test_status_poll_cache_and_rate_limit_hold_without_a_shared_cache(customer, sim, settings):
    """pretix without redis or memcached runs on a cache that keeps nothing (pretix.settings:
    CustomDummyCache). Polls must still be served from a cache and limited, per worker process."""
    import re
    settings.CACHES = {'default': {'BACKEND': 'pretix.helpers.cache.CustomDummyCache'}}
    views = plugin('views')
    customer.to_confirm()
    status_url = re.search(r'data-status-url="([^"]+)"', customer.confirm_page().content.decode()).group(1)
    cache = views.status_cache()
    assert isinstance(cache, LocMemCache), 'no per-process cache behind a cache that keeps nothing: %r' % cache
    cache.clear()  # the per-process fallback outlives a test
    started = time.monotonic()
    codes = []
    # A fixed window per minute: a run crossing a minute boundary may need up to twice the limit.
    while 429 not in codes and len(codes) < 2 * views.STATUS_RATE_LIMIT + 2:
        codes.append(customer.client.get(status_url).status_code)
    elapsed = time.monotonic() - started
    assert 429 in codes, 'no rate limit after %d polls' % len(codes)
    assert set(codes[:views.STATUS_RATE_LIMIT]) == {200}
    upstream = len(sim.requests_for('get_session'))
    assert upstream <= 2 + elapsed / views.STATUS_CACHE_SECONDS, '%d polls cost %d NodeRails calls in %.1fs' % (
        len(codes), upstream, elapsed)
