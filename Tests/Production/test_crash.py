"""Lost webhooks, lock timeouts and workers killed half-way: nothing is left half done, and the
next delivery or the reconciliation task confirms the payment exactly once."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import pytest
from django.utils.timezone import now
from django_scopes import scopes_disabled

from conftest import execute_payment, plugin
from harness import (CONFIRMED_ACTION, HERE, PAID_ACTION, action_count, connect, hold_payment_lock, lock_waiters,
                     open_transactions, wait_until)


def _processed(event_id):
    return plugin('models').ProcessedWebhookEvent.objects.filter(event_id=event_id).count()


def _assert_untouched(order, payment, event_id):
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'pending' and order.status == 'n'
        assert action_count(order, CONFIRMED_ACTION) == 0
        assert action_count(order, plugin('settlement').LOG_ACTION) == 0
        assert _processed(event_id) == 0, 'the dedupe record must roll back with the work'


def _assert_confirmed_once(order, payment):
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'confirmed' and order.status == 'p'
        assert action_count(order, CONFIRMED_ACTION) == 1
        assert action_count(order, PAID_ACTION) == 1


def test_lock_timeout_answers_503_in_time_and_retry_confirms(stack):
    order, payment, sid = stack.pending_order()
    stack.sim.mark_paid(sid)
    document = stack.sim.build_event('payment.captured', sid)
    holder = hold_payment_lock(stack, payment)
    try:
        started = time.monotonic()
        delivery = stack.sim.deliver('payment.captured', sid, document=document, times=1,
                                     url=stack.workers[1].webhook_url)[0]
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert delivery.status == 503, (delivery.status, delivery.response_body)
    assert int(delivery.response_headers.get('Retry-After', '0')) > 0, delivery.response_headers
    assert elapsed < 10, 'NodeRails gives up after 15 s; the webhook answered after %.1f s' % elapsed
    _assert_untouched(order, payment, document['id'])
    retry = stack.sim.deliver('payment.captured', sid, document=document, times=1, url=stack.workers[2].webhook_url)
    assert retry[0].ok, (retry[0].status, retry[0].response_body)
    _assert_confirmed_once(order, payment)


def _hold_event_lock(stack, event):
    """pretix's exclusive advisory lock on the event, as a large order being placed takes it: marking
    another order paid waits for it (pretix.base.services.locking.lock_objects) and gives up after
    LOCK_ACQUISITION_TIMEOUT."""
    from pretix.base.services.locking import pg_lock_key
    conn = connect(stack)
    with conn.cursor() as cursor:
        cursor.execute('SELECT pg_advisory_xact_lock(%s)', [pg_lock_key(event)])
    return conn


def test_lock_timeout_while_the_customer_confirms_a_late_payment_leaves_it_pending(stack):
    """The order expired while the crypto payment was on its way; accepting the late payment takes
    pretix's lock, which another transaction holds. The customer's confirmation must not leave a
    confirmed payment on an unpaid order (pretix commits the payment before it asks for the lock):
    the payment stays pending, and the capture webhook marks the order paid once the lock is free."""
    from pretix.base.payment import PaymentException
    order, payment, sid = stack.pending_order(state='created')
    stack.sim.mark_paid(sid)
    with scopes_disabled():
        order.status, order.expires = 'e', now() - timedelta(minutes=5)
        order.save(update_fields=['status', 'expires'])
    holder = _hold_event_lock(stack, stack.shop.event)
    try:
        with scopes_disabled(), pytest.raises(PaymentException, match='still processing'):
            execute_payment(stack, payment.pk, sid)
    finally:
        holder.rollback()
        holder.close()
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'pending' and order.status == 'e', (payment.state, order.status)
        assert action_count(order, CONFIRMED_ACTION) == 0
    delivery = stack.sim.deliver('payment.captured', sid, times=1, url=stack.workers[0].webhook_url)[0]
    assert delivery.ok and b'Payment confirmed' in delivery.response_body, delivery.response_body
    _assert_confirmed_once(order, payment)


def test_worker_killed_mid_webhook_next_delivery_confirms(stack):
    victim = stack.add_worker()
    order, payment, sid = stack.pending_order()
    stack.sim.mark_paid(sid)
    document = stack.sim.build_event('payment.captured', sid)
    holder = hold_payment_lock(stack, payment)
    try:
        # The delivery claims its event id, then waits for the payment row: kill it right there.
        thread = threading.Thread(target=stack.sim.deliver, args=('payment.captured', sid),
                                  kwargs=dict(document=document, times=1, url=victim.webhook_url), daemon=True)
        thread.start()
        assert wait_until(lambda: lock_waiters(stack) >= 1), 'the delivery never reached the payment lock'
        victim.kill()
    finally:
        holder.rollback()
        holder.close()
    thread.join(20)
    # The killed worker's transaction must roll back entirely once PostgreSQL notices the dead client.
    assert wait_until(lambda: lock_waiters(stack) == 0 and open_transactions(stack) == 0)
    _assert_untouched(order, payment, document['id'])
    redelivery = stack.sim.deliver('payment.captured', sid, document=document, times=1,
                                   url=stack.workers[0].webhook_url)[0]
    assert redelivery.ok and b'Payment confirmed' in redelivery.response_body, redelivery.response_body
    _assert_confirmed_once(order, payment)
    with scopes_disabled():
        assert _processed(document['id']) == 1


CUSTOMER_SCRIPT = textwrap.dedent('''
    import sys
    sys.path.insert(0, %(here)r)
    import django
    django.setup()
    from django_scopes import scopes_disabled
    import harness, conftest
    stack = harness.Stack()
    from pretix.base.models import Event
    with scopes_disabled():
        stack.shop = type('Shop', (), {'event': Event.objects.get(slug=harness.EVENT)})
        print('paying', flush=True)
        conftest.execute_payment(stack, %(payment)d, %(sid)r)
''')


def _reconcile():
    """One run of the periodic task, once the pending payments are old enough to be its business."""
    from django.core.cache import cache
    from pretix.base.models import OrderPayment
    signals = plugin('signals')
    OrderPayment.objects.filter(state='pending').update(
        created=now() - signals.RECONCILE_MIN_AGE - timedelta(minutes=1))
    cache.clear()  # minimum_interval would skip a run right after the last one
    return signals.reconcile_pending_payments(signal=None, sender=None)


def test_worker_killed_during_execute_payment_reconciliation_confirms(stack):
    """The customer paid; the pretix worker handling pay/complete dies while asking NodeRails,
    and the webhook never arrives. The periodic reconciliation confirms the payment, once."""
    order, payment, sid = stack.pending_order(state='created')
    stack.sim.mark_paid(sid)
    stack.sim.delay_next('get_session', 60)
    script = CUSTOMER_SCRIPT % {'here': HERE, 'payment': payment.pk, 'sid': sid}
    worker = subprocess.Popen([sys.executable, '-c', script], env=stack.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: any(sid in r.path for r in stack.sim.requests_for('get_session')), 60), \
            worker.stderr.read1(4000).decode(errors='replace') if worker.poll() is not None else 'no request'
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
        worker.stdout.close()
        worker.stderr.close()
    stack.sim.clear_faults()
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'pending', 'a payment the customer may have paid must be visible to reconciliation'
        assert order.status == 'n'
        _reconcile()
        _assert_confirmed_once(order, payment)
        _reconcile()  # a second run, and a late webhook, change nothing
    late = stack.sim.deliver('payment.captured', sid, times=1, url=stack.workers[1].webhook_url)[0]
    assert late.ok
    _assert_confirmed_once(order, payment)


def test_reconciliation_backs_off_while_noderails_is_down(stack):
    from pretix.base.models import OrderPayment
    orders = [stack.pending_order() for _ in range(3)]
    for _order, _payment, sid in orders:
        stack.sim.mark_paid(sid)
    stack.sim.clear_requests()
    stack.sim.fail_next('get_session', status=503, count=None)
    with scopes_disabled(), pytest.raises(plugin('client').NodeRailsUnavailable):
        _reconcile()  # raising is what makes pretix's minimum_interval back off
    assert len(stack.sim.requests_for('get_session')) == 1, 'the batch must stop at the first outage'
    stack.sim.clear_faults()
    with scopes_disabled():
        _reconcile()
        for order, payment, _sid in orders:
            _assert_confirmed_once(order, payment)
        assert not OrderPayment.objects.filter(pk__in=[p.pk for _o, p, _s in orders]).exclude(state='confirmed')
