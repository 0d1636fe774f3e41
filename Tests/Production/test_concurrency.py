"""Exactly once under concurrency, on PostgreSQL with several pretix worker processes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django_scopes import scopes_disabled

from conftest import execute_payment, in_thread, plugin
from harness import CONFIRMED_ACTION, PAID_ACTION, action_count, wait_until


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


def test_webhook_and_execute_payment_race_confirm_once(stack):
    """The customer's pay/complete request and payment.captured arrive together, in varying order."""
    for latency in (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3):
        order, payment, sid = stack.pending_order(state='created')
        stack.sim.mark_paid(sid)
        stack.sim.set_latency('get_session', latency)
        customer = in_thread(execute_payment, stack, payment.pk, sid)
        delivery = stack.sim.deliver('payment.captured', sid, times=1, url=stack.workers[1].webhook_url)[0]
        assert customer.join_result() is None, 'execute_payment must succeed'
        assert delivery.ok, (delivery.status, delivery.response_body)
        with scopes_disabled():
            payment.refresh_from_db()
            order.refresh_from_db()
            assert payment.state == 'confirmed' and order.status == 'p', latency
            assert action_count(order, CONFIRMED_ACTION) == 1, latency
            assert action_count(order, PAID_ACTION) == 1, latency
    stack.sim.set_latency('get_session', 0)


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
