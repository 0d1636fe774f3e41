"""Place order and the refund of an unclaimed paid checkout, racing in separate processes on
PostgreSQL: exactly one of them wins.

A customer paid in the embedded checkout, NodeRails' capture webhook recorded the cart checkout,
and its grace period is over. Now the customer's Place order (execute_payment) and pretix's cron
(the periodic task) run at the same time, each in its own OS process with its own database
connection. Either the order is confirmed and NodeRails is never asked for a refund, or NodeRails
is asked exactly once (deterministic Idempotency-Key) and the payment is not confirmed.

Both racer processes start once and take one job per round over stdin, so a round's two sides
really run together. Round kinds:

* gate:     this process holds the checkout's row lock while both sides arrive, so both wait at
            the point where they decide; released, PostgreSQL lets the first waiter decide first.
            The arrival order is chosen (customer first, task first, or both at once), so both
            outcomes are produced on purpose. Without the lock both would read "open" and win.
* free:     both started at once (the named side's job sent first), nothing held: the natural,
            unsynchronised race; either may win.
* inflight: the winner's NodeRails call is slowed down by the simulator and the other side runs
            while it is in flight: the refund is being sent when Place order comes (Place order
            must lose), or the customer's session lookup is under way when the task runs (the
            task must leave the checkout alone, and must not wait for the customer's call).
"""

import json
import os
import queue
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

from django.db import transaction
from django.utils.timezone import now
from django_scopes import scopes_disabled

from conftest import plugin
from harness import (
    CONFIRMED_ACTION, HERE, LIVE, PAID_ACTION, PRICE, action_count, connect, lock_waiters, wait_until,
)

ROUNDS = [
    ('gate', 'customer'), ('gate', 'task'), ('free', 'customer'), ('inflight', 'task'), ('gate', 'both'),
    ('inflight', 'customer'), ('gate', 'task'), ('free', 'task'), ('gate', 'customer'), ('gate', 'both'),
]
INFLIGHT_DELAY = 1.5  # seconds NodeRails takes to answer the winner in "inflight" rounds

RACER_SCRIPT = textwrap.dedent('''
    import json
    import sys
    import traceback
    sys.path.insert(0, %(here)r)
    import django
    django.setup()
    from types import SimpleNamespace
    from django.core.cache import cache
    from django_scopes import scopes_disabled
    from pretix.base.models import Event, OrderPayment
    from pretix.base.payment import PaymentException
    import conftest
    import harness

    role = %(role)r
    stack = harness.Stack()
    with scopes_disabled():
        stack.shop = SimpleNamespace(event=Event.objects.get(slug=harness.EVENT))


    def place_order(job):
        """pay/complete of the customer whose cart started the session (the order did not exist yet)."""
        payment = OrderPayment.objects.select_related('order').get(pk=job['payment'])
        request = conftest.customer_request(stack, payment, job['sid'])
        request.session[conftest.plugin('payment').SESSION_KEY]['payment'] = None
        provider = conftest.plugin('payment').NodeRailsPayment(stack.shop.event)
        return provider.execute_payment(request, payment)


    def periodic_task(job):
        cache.clear()  # minimum_interval would skip a run right after the last one
        conftest.plugin('signals').reconcile_pending_payments(signal=None, sender=None)


    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        result = {'round': job['round']}
        try:
            with scopes_disabled():
                (place_order if role == 'customer' else periodic_task)(job)
            result['ok'] = True
        except PaymentException as exc:
            result['payment_exception'] = str(exc)
        except Exception:
            result['error'] = traceback.format_exc()
        print(json.dumps(result), flush=True)
''')


class Racer:
    """A long-lived Django process on the test database that runs one job per line on stdin."""

    def __init__(self, stack, role):
        self.role = role
        self.log_path = os.path.join(stack.root, 'racer-%s.log' % role)
        self.log = open(self.log_path, 'wb')
        self.process = subprocess.Popen(
            [sys.executable, '-c', RACER_SCRIPT % {'here': HERE, 'role': role}], env=stack.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, **job):
        self.process.stdin.write(json.dumps(job) + '\n')
        self.process.stdin.flush()

    def result(self, timeout=60):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError('%s process gave no answer:\n%s' % (self.role, self.log_tail()))
        return json.loads(line)

    def stop(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stdout.close()
        self.log.close()

    def log_tail(self, size=4000):
        with open(self.log_path, 'rb') as f:
            return f.read()[-size:].decode('utf-8', 'replace')


def _paid_unclaimed_checkout(stack):
    """A cart checkout that was paid, recorded by the capture webhook and is due for refund,
    and the order its customer is placing right now (payment "created", session not bound)."""
    from pretix.base.models import Order
    sim, event = stack.sim, stack.shop.event
    sid = sim.create_session(format(PRICE, 'f'), 'USD', app_id=LIVE.app_id,
                             reference='forge/prod/cart-%s' % secrets.token_hex(8))['sessionId']
    checkouts = plugin('models').CartCheckout.objects
    with scopes_disabled():
        plugin('unclaimed').remember_checkout(event, sid, PRICE, False)
        sim.mark_paid(sid)
        [capture] = sim.deliver('payment.captured', sid, times=1, url=stack.workers[0].webhook_url)
        assert capture.ok and b'Payment without order recorded' in capture.response_body, capture.response_body
        assert checkouts.filter(session_id=sid, state='open').update(refund_after=now() - timedelta(minutes=1)) == 1
        with transaction.atomic():
            order = Order.objects.create(
                event=event, status=Order.STATUS_PENDING, email='buyer@example.org', datetime=now(),
                expires=now() + timedelta(days=3), total=PRICE, sales_channel=stack.shop.web, locale='en')
            order.positions.create(item=stack.shop.item, price=PRICE)
            order.create_transactions(is_new=True)
            payment = order.payments.create(provider=plugin('payment').IDENTIFIER, amount=PRICE, state='created')
    return sid, checkouts.get(session_id=sid), order, payment


def _race(stack, racers, index, kind, first, sid, checkout, payment):
    """Run one round; returns the results of (customer, task) and whether both met at the lock."""
    customer, task = racers['customer'], racers['task']
    jobs = {customer: dict(round=index, payment=payment.pk, sid=sid), task: dict(round=index)}
    met = None
    if kind == 'gate':
        holder = connect(stack)
        try:
            with holder.cursor() as cursor:
                cursor.execute('SELECT id FROM %s WHERE id = %%s FOR UPDATE' % checkout._meta.db_table,
                               [checkout.pk])
            if first == 'both':
                customer.send(**jobs[customer])
                task.send(**jobs[task])
            else:
                one, other = (customer, task) if first == 'customer' else (task, customer)
                one.send(**jobs[one])
                wait_until(lambda: lock_waiters(stack) >= 1, 15, interval=0.01,
                           message='the first side at the checkout lock')
                other.send(**jobs[other])
            met = wait_until(lambda: lock_waiters(stack) >= 2, 15, interval=0.01,
                             message='both sides waiting for the checkout lock')
        finally:
            holder.rollback()  # both go on, the first waiter first
            holder.close()
    elif kind == 'free':
        for racer in ((customer, task) if first == 'customer' else (task, customer)):
            racer.send(**jobs[racer])
    else:
        intent = checkout.payment_intent_id
        if first == 'task':  # the refund is on its way to NodeRails when the customer places the order
            stack.sim.delay_next('refund', INFLIGHT_DELAY)
            task.send(**jobs[task])
            assert wait_until(lambda: any(intent in r.path for r in stack.sim.requests_for('refund')),
                              interval=0.01), 'no refund sent'
            customer.send(**jobs[customer])
        else:  # the customer's session lookup is under way when the task runs
            stack.sim.delay_next('get_session', INFLIGHT_DELAY)
            customer.send(**jobs[customer])
            assert wait_until(lambda: any(sid in r.path for r in stack.sim.requests_for('get_session')),
                              interval=0.01), 'no lookup'
            task.send(**jobs[task])
            task_result = task.result()
            # The claim is committed before NodeRails is asked: the task is done while it waits.
            return customer.result(), task_result, customer.lines.empty()
    return customer.result(), task.result(), met


def _outcome(stack, sid, order, payment, customer_result, task_result):
    """'order' or 'refund', after checking that exactly that one side won; else AssertionError."""
    sim, unclaimed = stack.sim, plugin('unclaimed')
    assert 'error' not in task_result, task_result['error']
    assert 'error' not in customer_result, customer_result['error']
    with scopes_disabled():
        payment.refresh_from_db()
        order.refresh_from_db()
        checkout = plugin('models').CartCheckout.objects.get(session_id=sid)
        confirmed_logs = action_count(order, CONFIRMED_ACTION)
        paid_logs = action_count(order, PAID_ACTION)
    intent = checkout.payment_intent_id or sim.session(sid)['paymentIntentId']
    calls = [r for r in sim.requests_for('refund') if intent in r.path]
    refunds = sim.refunds_for(sid)
    state = (payment.state, order.status, checkout.state, len(calls), len(refunds))
    if payment.state == 'confirmed':
        both_won = bool(calls or refunds)
        assert not both_won, 'both won: order confirmed AND refund requested %s' % (state,)
        assert order.status == 'p' and checkout.state == 'claimed', state
        assert confirmed_logs == 1 and paid_logs == 1, (confirmed_logs, paid_logs)
        assert customer_result.get('ok'), customer_result
        return 'order'
    assert len(calls) == 1, 'nobody won, or refunded twice: %s' % (state,)
    assert calls[0].header('Idempotency-Key') == unclaimed.checkout_refund_key(intent), calls[0].headers
    assert len(refunds) == 1, refunds
    assert checkout.state in ('refunding', 'refunded'), state
    # "pending" would be wrong too: the reconciliation would confirm it later.
    assert payment.state in ('failed', 'canceled', 'created'), state
    assert order.status == 'n' and confirmed_logs == 0 and paid_logs == 0, state
    assert 'refunded' in customer_result.get('payment_exception', ''), customer_result
    return 'refund'


def test_place_order_and_unclaimed_refund_race_one_winner(stack):
    racers = {}
    try:
        for role in ('customer', 'task'):
            racers[role] = Racer(stack, role)
        for racer in racers.values():
            assert racer.result(120) == {'ready': True}
        started = time.monotonic()
        wins, problems, report = {'order': 0, 'refund': 0}, [], []
        for index, (kind, first) in enumerate(ROUNDS):
            stack.sim.clear_faults()
            sid, checkout, order, payment = _paid_unclaimed_checkout(stack)
            customer_result, task_result, met = _race(stack, racers, index, kind, first, sid, checkout, payment)
            label = '%d %s/%s' % (index, kind, first)
            try:
                winner = _outcome(stack, sid, order, payment, customer_result, task_result)
            except AssertionError as exc:
                problems.append('round %s: %s' % (label, exc))
                continue
            wins[winner] += 1
            report.append('%s->%s' % (label, winner))
            expected = {'customer': 'order', 'task': 'refund'}.get(first)
            if kind in ('gate', 'inflight') and expected and winner != expected:
                problems.append('round %s: %s won, the %s came first' % (label, winner, first))
            if kind == 'gate' and not met:
                problems.append('round %s: the two sides never both waited for the checkout lock' % label)
            if kind == 'inflight' and first == 'customer' and not met:
                problems.append('round %s: the task waited for the customer\'s NodeRails call' % label)
        elapsed = time.monotonic() - started
        print('\nunclaimed race: %d rounds in %.1f s, order won %d, refund won %d: %s'
              % (len(ROUNDS), elapsed, wins['order'], wins['refund'], ', '.join(report)))
        assert not problems, '\n'.join(problems)
        assert wins['order'] >= 1 and wins['refund'] >= 1, wins
    finally:
        for racer in racers.values():
            racer.stop()
