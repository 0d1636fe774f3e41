"""A deploy SIGKILLs the celery worker that is asking NodeRails for a refund: pretix's own
cancellation with automatic refund (cancel_order, as the customer's "cancel order" button starts it)."""

import re
import uuid
from datetime import timedelta

from django.utils.timezone import now
from django_scopes import scopes_disabled
from pretix.helpers.periodic import SKIPPED

import harness
from conftest import plugin


def paid_order(cluster):
    order, payment, sid = cluster.pending_order()
    cluster.sim.mark_paid(sid)
    delivery = cluster.sim.deliver('payment.captured', sid, times=1)[0]
    assert delivery.status == 200, delivery
    payment.refresh_from_db()
    assert payment.state == 'confirmed'
    return order, payment, sid


def test_celery_worker_killed_while_refunding(cluster):
    from pretix.base.models import OrderRefund
    from pretix.base.services.orders import cancel_order
    with scopes_disabled():
        order, payment, sid = paid_order(cluster)
    intent = payment.info_data['payment_intent_id']
    refunds_before = len(cluster.sim.requests_for('refund'))
    held = cluster.sim.hold_next('refund')
    task_id = str(uuid.uuid4())
    cancel_order.apply_async(args=(order.pk,), kwargs={'try_auto_refund': True}, task_id=task_id)
    harness.wait_until(lambda: len(cluster.sim.requests_for('refund')) > refunds_before, timeout=90,
                       message='the celery worker to ask NodeRails for the refund')
    # A deploy kills the workers (the one in the refund call among them) before NodeRails answers.
    for index in range(len(cluster.celery)):
        cluster.kill_celery(index)
    assert 'cancel_order[%s] succeeded' % task_id not in cluster.celery_log(), 'killed too late'
    held.release()  # NodeRails carries the refund out; nobody is left to hear the answer
    assert cluster.sim.wait_idle(30)
    for index in range(len(cluster.celery)):
        cluster.start_celery(index)
    refund_id = cluster.sim.books()[intent]['refunds'][0]['refundId']
    with scopes_disabled():
        # pretix committed the refund and the plugin's claim before the call: it is left "created".
        left = order.refunds.get()
        assert left.state == OrderRefund.REFUND_STATE_CREATED and left.info_data.get('idempotency_key')
        # NodeRails' answer never arrived, and its webhook is lost too: only the periodic task, once the
        # refund is old enough, asks NodeRails again (same Idempotency-Key) and learns the refund.
        age = plugin('signals').RECONCILE_MIN_AGE + timedelta(minutes=1)
        OrderRefund.objects.filter(pk=left.pk).update(created=now() - age)
        for _ in range(2):  # the first run reopens it and asks NodeRails again; a second changes nothing
            cluster.forget_periodic_runs()
            assert plugin('signals').reconcile_pending_payments(sender=None) is not SKIPPED
        left.refresh_from_db()
        assert (left.state, left.info_data.get('refund_id')) == (OrderRefund.REFUND_STATE_TRANSIT, refund_id)
    # NodeRails settles the refund on-chain and announces it.
    for delivery in cluster.sim.complete_refund(refund_id):
        assert delivery.status == 200, delivery
    with scopes_disabled():
        order.refresh_from_db()
        refunds = list(order.refunds.exclude(state__in=[OrderRefund.REFUND_STATE_FAILED,
                                                        OrderRefund.REFUND_STATE_CANCELED]))
        assert order.status == 'c', order.status
        assert [(r.state, r.amount) for r in refunds] == [(OrderRefund.REFUND_STATE_DONE, payment.amount)]
        assert order.pending_sum == 0
    calls = [r for r in cluster.sim.requests_for('refund')[refunds_before:] if intent in r.path]
    book = cluster.sim.books()[intent]
    # Asked twice (the killed call and the task's), with one Idempotency-Key: NodeRails refunded once.
    assert len({c.header('Idempotency-Key') for c in calls}) == 1, [c.headers for c in calls]
    assert (len(book['refunds']), book['refunded']) == (1, str(payment.amount)), book
    # Acknowledged when it was received, the killed task is not run again by the restarted workers.
    assert len(re.findall(r'cancel_order\[%s\] received' % task_id, cluster.celery_log())) == 1
