"""pretix's cron entry (`runperiodic`) twice at once on one database, as two app hosts run it:
each unclaimed checkout is refunded by one NodeRails call, each open payment reconciled once."""

from collections import Counter
from datetime import timedelta

from django.utils.timezone import now
from django_scopes import scopes_disabled

import harness
from conftest import plugin

CHECKOUTS = 3
PAYMENTS = 3


def unclaimed_checkout(cluster):
    """A checkout paid at NodeRails that never became an order, its grace period over."""
    unclaimed = plugin('unclaimed')
    session = cluster.sim.create_session('12.50', 'USD', app_id=harness.LIVE.app_id, reference='forge/cluster')
    paid = cluster.sim.mark_paid(session['sessionId'])
    with scopes_disabled():
        unclaimed.remember_checkout(cluster.shop.event, session['sessionId'], harness.PRICE, False)
        checkout = plugin('models').CartCheckout.objects.get(session_id=session['sessionId'])
        unclaimed.record_capture(checkout, harness.PRICE, 'USD', paid['paymentIntentId'])
        plugin('models').CartCheckout.objects.filter(pk=checkout.pk).update(refund_after=now() - timedelta(minutes=1))
    return paid['paymentIntentId']


def open_payment(cluster):
    """A payment NodeRails was paid for whose webhook never came, old enough to be reconciled."""
    from pretix.base.models import OrderPayment
    order, payment, sid = cluster.pending_order(state='created')
    cluster.sim.mark_paid(sid)
    age = plugin('signals').RECONCILE_MIN_AGE + timedelta(minutes=1)
    OrderPayment.objects.filter(pk=payment.pk).update(created=now() - age)
    return order, payment, sid


def test_two_runperiodic_at_once_refund_and_reconcile_once(cluster):
    intents = [unclaimed_checkout(cluster) for _ in range(CHECKOUTS)]
    with scopes_disabled():
        payments = [open_payment(cluster) for _ in range(PAYMENTS)]
    first, second = cluster.runperiodic(http_timeout=120), cluster.runperiodic()
    refunds_before = len(cluster.sim.requests_for('refund'))
    held = cluster.sim.hold_next('refund')
    cluster.forget_periodic_runs()
    first.stdin.write(b'\n')
    first.stdin.flush()
    harness.wait_until(lambda: len(cluster.sim.requests_for('refund')) > refunds_before, timeout=120,
                       message='the first runperiodic to ask NodeRails for a refund')
    # The first run is inside its refund call. minimum_interval's running flag lives in redis and
    # is "not safe of race-conditions" (pretix.helpers.periodic); a redis restart loses it, so the
    # second host's cron runs the task in full meanwhile.
    cluster.restart_redis()
    second_output = second.communicate(b'\n', timeout=150)[0].decode()
    held.release()
    first_output = first.communicate(timeout=150)[0].decode()

    for output in (first_output, second_output):
        assert 'Completed %s' % cluster_task() in output, output
    calls = Counter(r.path.split('/')[-2] for r in cluster.sim.requests_for('refund')[refunds_before:])
    assert calls == Counter({intent: 1 for intent in intents}), calls
    books = cluster.sim.books()
    assert [(books[i]['refunded'], len(books[i]['refunds'])) for i in intents] == [('12.50', 1)] * CHECKOUTS
    with scopes_disabled():
        states = set(plugin('models').CartCheckout.objects.filter(payment_intent_id__in=intents)
                     .values_list('state', flat=True))
        assert states == {'refunded'}
        for order, payment, sid in payments:
            payment.refresh_from_db()
            assert payment.state == 'confirmed'
            assert harness.action_count(order, harness.CONFIRMED_ACTION) == 1
            assert len([r for r in cluster.sim.requests_for('get_session') if sid in r.path]) == 1


def cluster_task():
    import cluster as topology
    return topology.PERIODIC_TASK
