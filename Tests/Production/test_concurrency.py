"""Exactly once under concurrency, on PostgreSQL with several pretix worker processes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django_scopes import scopes_disabled

from conftest import execute_payment, in_thread, plugin
from harness import (CONFIRMED_ACTION, EVENT, ORG, PAID_ACTION, action_count, hold_payment_lock, lock_waiters,
                     wait_until)


def _fire(stack, deliveries):
    """POST (event_type, session_id, document) deliveries at once, spread over all workers; a
    503 (lock timeout) is redelivered like NodeRails does. Returns the final status codes."""
    barrier = threading.Barrier(len(deliveries))

    def send(index):
        event_type, sid, document = deliveries[index]
        url = stack.workers[index % len(stack.workers)].webhook_url
        barrier.wait(timeout=30)
        for _attempt in range(5):
            delivery = stack.sim.deliver(event_type, sid, document=document, times=1, url=url)[0]
            if delivery.status != 503:
                break
            time.sleep(0.2)
        return delivery.status or delivery.error

    with ThreadPoolExecutor(len(deliveries)) as pool:
        return list(pool.map(send, range(len(deliveries))))


def _processed(event_id):
    return plugin('models').ProcessedWebhookEvent.objects.filter(event_id=event_id).count()


def test_twenty_concurrent_deliveries_confirm_once(stack):
    assert len(stack.workers) >= 3
    order, payment, sid = stack.pending_order()
    stack.sim.mark_paid(sid)
    document = stack.sim.build_event('payment.captured', sid)
    statuses = _fire(stack, [('payment.captured', sid, document)] * 20)

    assert all(isinstance(s, int) and 200 <= s < 300 for s in statuses), statuses
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'confirmed' and order.status == 'p'
        assert action_count(order, CONFIRMED_ACTION) == 1
        assert action_count(order, PAID_ACTION) == 1
        assert action_count(order, plugin('settlement').LOG_ACTION) == 1
        assert _processed(document['id']) == 1


def test_both_spellings_at_once_confirm_once(stack):
    """NodeRails documents payment.* and payment_intent.*: two event ids for one capture."""
    order, payment, sid = stack.pending_order()
    stack.sim.mark_paid(sid)
    first = stack.sim.build_event('payment.captured', sid)
    second = stack.sim.build_event('payment_intent.captured', sid)
    statuses = _fire(stack, [('payment.captured', sid, first), ('payment_intent.captured', sid, second)] * 6)

    assert all(isinstance(s, int) and 200 <= s < 300 for s in statuses), statuses
    with scopes_disabled():
        payment.refresh_from_db()
        assert payment.state == 'confirmed'
        assert action_count(order, CONFIRMED_ACTION) == 1
        assert action_count(order, PAID_ACTION) == 1
        assert action_count(order, plugin('settlement').LOG_ACTION) == 2  # one per NodeRails event


def _customer_completes(stack, order, payment, sid):
    """The customer's browser on pretix's pay/complete page, served by worker 0: its session cookie
    names a session holding the checkout, as the confirm step leaves it. Returns the redirect."""
    import http.client
    from importlib import import_module

    from django.conf import settings
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[plugin('payment').SESSION_KEY] = {
        'event': stack.shop.event.pk, 'session_id': sid, 'amount': '12.50', 'currency': 'USD',
        'testmode': False, 'payment': payment.pk,
    }
    store.create()
    worker = stack.workers[0]
    connection = http.client.HTTPConnection('127.0.0.1', worker.port, timeout=60)
    try:
        connection.request('GET', '/%s/%s/order/%s/%s/pay/%d/complete' % (ORG, EVENT, order.code, order.secret, payment.pk),
                           headers={'Cookie': '%s=%s' % (settings.SESSION_COOKIE_NAME, store.session_key)})
        response = connection.getresponse()
        return response.status, response.getheader('Location') or ''
    finally:
        connection.close()


def _queue_behind_a_lock(stack, order, payment, sid, first):
    """Both sides wait for the payment row, ``first`` in front: PostgreSQL grants a row lock to its
    waiters in order, so that side confirms. Returns the customer's and the webhook's threads."""
    held = stack.sim.hold_next('get_session')   # the customer, past binding the checkout, asks NodeRails
    customer = in_thread(_customer_completes, stack, order, payment, sid)
    assert wait_until(lambda: any(sid in r.path for r in stack.sim.requests_for('get_session')), 30)
    holder = hold_payment_lock(stack, payment)
    webhook = None
    try:
        for waiting, side in enumerate((first, 'webhook' if first == 'customer' else 'customer'), start=1):
            if side == 'customer':
                held.release()
            else:
                webhook = in_thread(_deliver, stack, sid)
            assert wait_until(lambda: lock_waiters(stack) >= waiting, 30), '%s never reached the payment lock' % side
    finally:
        holder.rollback()
        holder.close()
    return customer, webhook


def _deliver(stack, sid):
    """payment.captured to worker 1, redelivered like NodeRails while answered 503 (a lock wait ran out)."""
    document = stack.sim.build_event('payment.captured', sid)
    for _attempt in range(5):
        delivery = stack.sim.deliver('payment.captured', sid, document=document, times=1,
                                     url=stack.workers[1].webhook_url)[0]
        if delivery.status != 503:
            break
    return delivery


# A free race per NodeRails latency (the customer's verification takes that long), then one race
# each way with both sides queued behind a held payment lock, so both winners are always seen.
FREE_RACES = (0.0, 0.02, 0.05, 0.1, 0.3)
QUEUED_RACES = ('customer', 'webhook')


def test_webhook_and_customer_pay_complete_race_confirm_once(stack):
    """The customer's pay/complete request (on a worker) and payment.captured (on another) arrive
    together: the payment is confirmed and the order paid exactly once, whichever side wins."""
    winners = []
    for race in FREE_RACES + QUEUED_RACES:
        order, payment, sid = stack.pending_order(state='created')
        stack.sim.mark_paid(sid)
        if race in QUEUED_RACES:
            customer, webhook = _queue_behind_a_lock(stack, order, payment, sid, race)
        else:
            stack.sim.set_latency('get_session', race)
            customer = in_thread(_customer_completes, stack, order, payment, sid)
            webhook = in_thread(_deliver, stack, sid)
        status, location = customer.join_result()
        delivery = webhook.join_result()
        stack.sim.set_latency('get_session', 0)
        assert status == 302 and '/order/%s/' % order.code in location, (race, status, location)
        if race in QUEUED_RACES:   # inside execute_payment when it lost or won: no error for the customer
            assert location.endswith(('?paid=yes', '?thanks=yes')), (race, location)
        answers = {b'Payment confirmed': 'webhook', b'Payment already confirmed': 'customer'}
        assert delivery.status == 200 and delivery.response_body in answers, (race, delivery.status, delivery.response_body)
        winners.append(answers[delivery.response_body])
        with scopes_disabled():
            payment.refresh_from_db()
            order.refresh_from_db()
            assert payment.state == 'confirmed' and order.status == 'p', race
            assert action_count(order, CONFIRMED_ACTION) == 1, race
            assert action_count(order, PAID_ACTION) == 1, race
    for race, winner in zip(FREE_RACES + QUEUED_RACES, winners):
        if race in QUEUED_RACES:
            assert winner == race, 'the side queued first did not confirm: %s' % list(zip(FREE_RACES + QUEUED_RACES, winners))
    assert set(winners) == {'customer', 'webhook'}, winners


def test_webhook_answers_fast_while_noderails_is_slow(stack):
    """execute_payment waits for a slow NodeRails API; the webhook must not wait for it."""
    order, payment, sid = stack.pending_order(state='created')
    stack.sim.mark_paid(sid)
    stack.sim.delay_next('get_session', 8)
    customer = in_thread(execute_payment, stack, payment.pk, sid)
    assert wait_until(lambda: any(sid in r.path for r in stack.sim.requests_for('get_session')), 15)
    started = time.monotonic()
    delivery = stack.sim.deliver('payment.captured', sid, times=1, url=stack.workers[2].webhook_url)[0]
    elapsed = time.monotonic() - started
    assert delivery.ok and b'confirmed' in delivery.response_body, (delivery.status, delivery.response_body)
    # execute_payment holds no lock while it waits, so the webhook does not wait for NodeRails.
    assert elapsed < 5, 'webhook took %.1f s while NodeRails was slow' % elapsed
    assert customer.join_result() is None
    with scopes_disabled():
        assert action_count(order, CONFIRMED_ACTION) == 1 and action_count(order, PAID_ACTION) == 1


def test_two_refunds_at_once_make_one_noderails_refund(stack):
    """Two refunds of the whole payment requested at once (e.g. a double click in the backend)."""
    from pretix.base.models import OrderRefund
    from pretix.base.payment import PaymentException

    order, payment, sid = stack.pending_order()
    stack.sim.mark_paid(sid)
    assert stack.sim.deliver('payment.captured', sid, times=1, url=stack.workers[0].webhook_url)[0].ok
    with scopes_disabled():
        payment.refresh_from_db()
    intent = payment.info_data['payment_intent_id']
    stack.sim.set_latency('refund', 0.3)
    barrier = threading.Barrier(2)

    def refund_whole_payment():
        # What pretix's OrderRefundView does for each submitted refund.
        refund = OrderRefund.objects.create(order=order, payment=payment, source=OrderRefund.REFUND_SOURCE_ADMIN,
                                            state=OrderRefund.REFUND_STATE_CREATED, amount=payment.amount,
                                            provider=payment.provider)
        barrier.wait(timeout=30)
        try:
            refund.payment_provider.execute_refund(refund)
        except PaymentException:
            refund.state = OrderRefund.REFUND_STATE_FAILED
            refund.save()
        return refund.pk

    threads = [in_thread(refund_whole_payment) for _ in range(2)]
    for thread in threads:
        thread.join_result()
    stack.sim.set_latency('refund', 0)

    calls = [r for r in stack.sim.requests_for('refund') if intent in r.path]
    assert len(calls) == 1, 'NodeRails was asked for %d refunds' % len(calls)
    with scopes_disabled():
        states = sorted(order.refunds.values_list('state', flat=True))
        assert states == ['failed', 'transit'], states
        refund_id = order.refunds.get(state='transit').info_data['refund_id']
    deliveries = stack.sim.complete_refund(refund_id)  # NodeRails settles it and sends payment.refunded
    assert deliveries and all(d.ok for d in deliveries)
    with scopes_disabled():
        assert sorted(order.refunds.values_list('state', flat=True)) == ['done', 'failed']
        assert action_count(order, 'pretix.event.order.refund.done') == 1
        payment.refresh_from_db()
        assert payment.state == 'refunded'
