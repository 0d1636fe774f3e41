"""A customer pays in the embedded checkout but no order is placed (tab closed, cart expired,
browser crashed): the capture webhook records the paid session, the periodic task refunds it
after a grace period, and Place order and the refund never both win."""

import time
from datetime import timedelta

import pytest
from realpretix import LIVE, TEST, age_for_reconciliation, plugin, run_periodic_tasks, wait_until
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


def _checkouts():
    return plugin('models').CartCheckout.objects


def _checkout(sid):
    with scopes_disabled():
        return _checkouts().get(session_id=sid)


def _make_due(sid):
    """Move the grace period into the past, as if the customer had not come back for hours."""
    with scopes_disabled():
        assert _checkouts().filter(session_id=sid).update(refund_after=now() - timedelta(minutes=1)) == 1


def _refund_log(event, action=None):
    from pretix.base.models import LogEntry
    action = action or plugin('unclaimed').LOG_REFUNDED
    with scopes_disabled():
        return list(LogEntry.objects.filter(event=event, action_type=action))


@pytest.fixture
def paid_without_order(customer, sim):
    """The customer reached the confirm page and paid; NodeRails sent the capture; no order."""
    customer.to_confirm()
    sid = customer.state['session_id']
    [delivery] = sim.deliver('payment.captured', sid)
    assert delivery.status == 200, delivery.response_body
    sim.clear_requests()
    return sid


def test_session_is_remembered_when_created_for_a_cart(customer, sim):
    customer.to_confirm()
    checkout = _checkout(customer.state['session_id'])
    assert checkout.state == 'started' and checkout.event_id == customer.shop.event.pk
    assert str(checkout.amount) == '12.50' and checkout.currency == 'USD' and checkout.testmode is False


def test_capture_without_order_is_recorded_once(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    deliveries = sim.deliver('payment.captured', sid, times=3)
    assert [d.status for d in deliveries] == [200, 200, 200], [d.response_body for d in deliveries]
    assert b'recorded' in deliveries[0].response_body
    assert b'Duplicate' in deliveries[1].response_body
    checkout = _checkout(sid)
    assert checkout.state == 'open'
    assert checkout.payment_intent_id == sim.session(sid)['paymentIntentId']
    assert str(checkout.amount) == '12.50'
    # reservation time (30 min by default) plus the documented margin
    grace = timedelta(minutes=30) + plugin('unclaimed').GRACE_MARGIN
    assert checkout.refund_after - checkout.paid == grace
    first_seen = checkout.paid
    # the other spelling of the same capture changes nothing
    [d] = sim.deliver('payment_intent.captured', sid)
    assert d.status == 200 and b'already recorded' in d.response_body
    with scopes_disabled():
        assert _checkouts().count() == 1
        assert _checkouts().get().paid == first_seen
        assert plugin('models').ProcessedWebhookEvent.objects.count() == 2


def test_sessions_pretix_did_not_start_are_ignored(customer, sim):
    """A session of another shop on the same NodeRails app, or one signed in the wrong mode."""
    foreign = sim.create_session('12.50', reference='forge/conf/cart-0000', metadata={'organizer': 'forge'})
    [d] = sim.deliver('payment.captured', foreign['sessionId'])
    assert d.status == 200 and b'Unknown payment' in d.response_body
    customer.to_confirm()
    sid = customer.state['session_id']
    [d] = sim.deliver('payment.captured', sid, secret=TEST.secret)   # live checkout, test-app signature
    assert d.status == 200 and b'Mode mismatch' in d.response_body
    assert _checkout(sid).state == 'started'


def test_not_refunded_during_grace_period(paid_without_order, sim):
    run_periodic_tasks()
    assert sim.requests_for('refund') == []
    assert _checkout(paid_without_order).state == 'open'


def test_refunded_once_after_grace_period_and_logged(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    run_periodic_tasks()
    [call] = sim.requests_for('refund')
    intent = sim.session(sid)['paymentIntentId']
    assert call.path == '/payments/intents/%s/refund' % intent
    assert call.header('Idempotency-Key') == plugin('unclaimed').checkout_refund_key(intent)
    assert (call.header('x-app-id'), call.header('x-api-key')) == (LIVE.app_id, LIVE.api_key)
    assert call.json['amount'] == '12.50'
    [refund] = sim.refunds.values()
    checkout = _checkout(sid)
    assert checkout.state == 'refunded' and checkout.refund_id == refund.refund_id
    assert checkout.refund_attempts == 1
    [entry] = _refund_log(customer.shop.event)
    text = str(entry.display())
    assert '12.50 USD' in text and sid in text and 'refunded' in text
    # the next run finds nothing to do
    run_periodic_tasks()
    assert len(sim.requests_for('refund')) == 1 and len(sim.refunds) == 1
    assert len(_refund_log(customer.shop.event)) == 1


def test_order_placed_within_grace_period_is_confirmed_not_refunded(customer, paid_without_order, sim):
    sid = paid_without_order
    r, order = customer.place_order()
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p' and order.payments.get().state == 'confirmed'
    assert _checkout(sid).state == 'claimed'
    _make_due(sid)
    run_periodic_tasks()
    assert sim.requests_for('refund') == [] and sim.refunds == {}
    assert _checkout(sid).state == 'claimed'


def test_order_placed_after_refund_is_not_confirmed(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    run_periodic_tasks()
    assert _checkout(sid).state == 'refunded'
    # the customer comes back to the still open confirm page and places the order
    r, order = customer.place_order()
    page = customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert order.status == 'n' and payment.state == 'failed'
    msgs = customer.messages(page)
    assert any('refunded' in m and 'pay again' in m for m in msgs), msgs
    assert 'Traceback' not in page.content.decode()
    assert len(sim.refunds) == 1 and _checkout(sid).state == 'refunded'
    assert customer.state is None   # the next attempt starts with a new checkout


def test_noderails_down_during_refund_is_retried_next_run(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    sim.fail_next('refund', status=503)
    with pytest.raises(plugin('client').NodeRailsUnavailable):
        run_periodic_tasks()   # raised on purpose: minimum_interval backs off
    checkout = _checkout(sid)
    assert checkout.state == 'refunding' and checkout.refund_attempts == 1 and checkout.last_error
    assert sim.refunds == {} and _refund_log(customer.shop.event) == []
    # meanwhile the customer cannot confirm the order the refund was decided for
    r, order = customer.place_order()
    page = customer.follow(r)
    payment = _failed_payment(order)
    assert any('refunded' in m for m in customer.messages(page))
    age_for_reconciliation(payment)   # the next run also reconciles it with the PAID session
    run_periodic_tasks()
    assert _failed_payment(order) == payment
    calls = sim.requests_for('refund')
    assert len(calls) == 2 and len({c.header('Idempotency-Key') for c in calls}) == 1
    assert len(sim.refunds) == 1
    checkout = _checkout(sid)
    assert checkout.state == 'refunded' and checkout.refund_attempts == 2 and checkout.last_error == ''
    assert len(_refund_log(customer.shop.event)) == 1


def test_refund_timeout_retry_does_not_refund_twice(paid_without_order, sim, http_timeout):
    """NodeRails carried the refund out but answered too late: the retry gets the same refund."""
    sid = paid_without_order
    http_timeout(1.0)
    _make_due(sid)
    held = sim.hold_next('refund')
    started = time.monotonic()
    with pytest.raises(plugin('client').NodeRailsTimeout):
        run_periodic_tasks()
    assert time.monotonic() - started < 8, 'the shortened timeout (1 s) was not used'
    held.release()
    assert wait_until(lambda: len(sim.refunds) == 1, timeout=10)   # carried out after all
    assert _checkout(sid).state == 'refunding'
    run_periodic_tasks()
    assert len(sim.refunds) == 1
    checkout = _checkout(sid)
    assert checkout.state == 'refunded' and checkout.refund_id == next(iter(sim.refunds))


def test_refund_webhook_settles_a_refund_whose_answer_was_lost(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    sim.drop_next('refund')
    with pytest.raises(plugin('client').NodeRailsUnavailable):
        run_periodic_tasks()
    assert _checkout(sid).state == 'refunding'
    # the dropped request was not carried out by the simulator; refund it as NodeRails' support would
    intent = sim.session(sid)['paymentIntentId']
    refund = plugin('client').NodeRailsClient(LIVE.app_id, LIVE.api_key, base_url=sim.api_url).refund_payment_intent(
        intent, amount=_checkout(sid).amount, reason='manual',
        idempotency_key=plugin('unclaimed').checkout_refund_key(intent))
    [d] = sim.deliver('payment.refunded', sid, refund_id=refund.refund_id)
    assert d.status == 200 and b'recorded' in d.response_body, d.response_body
    checkout = _checkout(sid)
    assert checkout.state == 'refunded' and checkout.refund_id == refund.refund_id
    assert len(_refund_log(customer.shop.event)) == 1
    run_periodic_tasks()
    assert len(sim.refunds) == 1


def test_refund_refused_by_noderails_is_left_to_the_organiser(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    sim.fail_next('refund', status=409)
    run_periodic_tasks()   # a refusal is final: no back-off
    checkout = _checkout(sid)
    assert checkout.state == 'failed' and checkout.last_error
    action = plugin('unclaimed').LOG_REFUND_FAILED
    [entry] = _refund_log(customer.shop.event, action)
    assert 'NodeRails dashboard' in str(entry.display())
    run_periodic_tasks()
    assert len(sim.requests_for('refund')) == 1
    r, order = customer.place_order()
    page = customer.follow(r)
    payment = _failed_payment(order)
    assert any('contact the event organizer' in m for m in customer.messages(page))
    age_for_reconciliation(payment)   # reconciled with the PAID session, it must stay failed
    run_periodic_tasks()
    assert _failed_payment(order) == payment


def _failed_payment(order):
    """The order's one payment, failed (not merely left pending) with the order unpaid."""
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert (order.status, payment.state) == ('n', 'failed')
    return payment


def test_test_mode_checkout_is_refunded_with_test_credentials(customer, sim):
    with scopes_disabled():
        customer.shop.event.testmode = True
        customer.shop.event.save()
    customer.to_confirm()
    sid = customer.state['session_id']
    assert _checkout(sid).testmode is True
    [d] = sim.deliver('payment.captured', sid)   # signed with the test app's secret
    assert d.status == 200 and _checkout(sid).state == 'open'
    _make_due(sid)
    run_periodic_tasks()
    [call] = sim.requests_for('refund')
    assert (call.header('x-app-id'), call.header('x-api-key')) == (TEST.app_id, TEST.api_key)
    assert _checkout(sid).state == 'refunded'


def test_bookkeeping_of_old_unpaid_and_claimed_checkouts_is_deleted(customer, paid_without_order, sim):
    """Old expired (NodeRails said never paid) and claimed (an order has the money) checkouts are only
    bookkeeping; an open one still waits for its refund, and refunding, refunded and failed ones are
    the record of money sent back (or not): those stay. A started one is asked about first."""
    unpaid_customer = type(customer)(customer.shop)
    unpaid_customer.to_confirm()
    unpaid = unpaid_customer.state['session_id']
    sim.expire(unpaid)
    buyer = type(customer)(customer.shop)
    buyer.to_confirm()
    claimed = buyer.state['session_id']
    sim.mark_paid(claimed)
    r, order = buyer.place_order()
    buyer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p' and _checkout(claimed).state == 'claimed'
        assert _checkout(unpaid).state == 'started'
        kept = {paid_without_order: 'open'}
        for state in ('refunding', 'refunded', 'failed'):
            row = _checkouts().create(session_id='cs_old_' + state, event=customer.shop.event, amount='12.50',
                                      currency='USD', state=state)
            kept[row.session_id] = state
        _checkouts().update(created=now() - plugin('unclaimed').CHECKOUT_RETENTION - timedelta(days=1))
    run_periodic_tasks()
    assert _checkout(unpaid).state == 'expired'   # NodeRails was asked: never paid
    run_periodic_tasks()
    with scopes_disabled():
        assert dict(_checkouts().values_list('session_id', 'state')) == kept


# -- two runs of the periodic task at once -----------------------------------------------------------------


def _refund_in_progress(sid):
    """Run A of the periodic task has decided to refund the checkout and is waiting for NodeRails."""
    with scopes_disabled():
        checkout = plugin('unclaimed').begin_refund(_checkout(sid).pk)
    assert checkout is not None and checkout.state == 'refunding'
    return checkout


def _finish_refund(checkout):
    with scopes_disabled():
        client = plugin('payment').NodeRailsPayment(checkout.event).client(checkout.testmode)
        return plugin('unclaimed').refund(checkout, client, 2)


def test_overlapping_runs_ask_noderails_once(customer, paid_without_order, sim):
    """Run B starts while run A is still asking NodeRails (another worker, or a slow A): B leaves the
    checkout to A instead of sending the same refund again."""
    sid = paid_without_order
    _make_due(sid)
    first = _refund_in_progress(sid)
    run_periodic_tasks()  # run B
    assert sim.requests_for('refund') == [], 'a second run asked NodeRails while the first one was'
    assert _finish_refund(first) == 'refunded'
    run_periodic_tasks()
    assert len(sim.requests_for('refund')) == 1 and len(sim.refunds) == 1
    assert _checkout(sid).state == 'refunded'
    assert len(_refund_log(customer.shop.event)) == 1


def test_run_that_died_mid_refund_is_taken_over_once_its_lease_is_over(customer, paid_without_order, sim):
    sid = paid_without_order
    _make_due(sid)
    _refund_in_progress(sid)  # ... and that worker is killed before NodeRails answers
    run_periodic_tasks()
    assert sim.requests_for('refund') == []
    with scopes_disabled():
        _checkouts().filter(session_id=sid).update(refund_lease_until=now() - timedelta(seconds=1))
    run_periodic_tasks()
    assert len(sim.requests_for('refund')) == 1 and len(sim.refunds) == 1
    checkout = _checkout(sid)
    assert checkout.state == 'refunded' and checkout.refund_attempts == 2


def test_choosing_the_method_again_after_the_refund_gives_a_new_checkout(customer, paid_without_order, sim):
    """The same cart and amount send the same Idempotency-Key, so NodeRails answers with the refunded
    session: the plugin must not show that one again (its Place order could only fail)."""
    sid = paid_without_order
    _make_due(sid)
    run_periodic_tasks()
    assert _checkout(sid).state == 'refunded'
    r = customer.choose_payment()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/')
    new = customer.state['session_id']
    assert new != sid and sim.session(new)['status'] == 'OPEN'
    assert _checkout(new).state == 'started'
    sim.mark_paid(new)
    r, order = customer.place_order()
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p' and order.payments.get().info_data['session_id'] == new
    assert len(sim.refunds) == 1
