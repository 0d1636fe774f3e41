"""Confirming a payment: never stranded half-confirmed, contradictions reach the organiser, and the
[webhook] confirm_on choice of the stock plugin (the customer's approval confirms).

pretix's OrderPayment.confirm() commits the payment's new state before it locks the order's quotas
to mark the order paid (pretix/base/models/orders.py, confirm() then _mark_order_paid). When that
lock is not granted in time (LockTimeoutException; pretix takes it to accept a late payment for an
expired order), a confirm()
outside a transaction leaves a confirmed payment on an unpaid order, which every later webhook
answers with "already confirmed". The lock timeout is forced with pretix's own test switch
(?_debug_flag=fail-locking, pretix.testutils.middleware); on PostgreSQL the production suite holds
the real lock from another connection (Tests/Production/test_crash.py).
"""

from datetime import timedelta

import pytest
from realpretix import age_for_reconciliation, plugin, run_periodic_tasks
from django.core import mail
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


def _expired_meanwhile(order):
    """The order expired while the crypto payment was on its way: pretix accepts the late payment,
    but locks the quotas first to check they still have room (Order._is_still_available)."""
    with scopes_disabled():
        order.status = 'e'
        order.expires = now() - timedelta(minutes=5)
        order.save(update_fields=['status', 'expires'])


def _confirmations(order):
    with scopes_disabled():
        return order.all_logentries().filter(action_type='pretix.event.order.payment.confirmed').count()


@pytest.fixture
def lock_timeout_on_confirm(customer, sim):
    """Paid in the iframe, Place order, and pretix's quota lock times out while the customer's
    pay/complete step confirms. Returns (order, payment, session id)."""
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid)
    r, order = customer.place_order()
    _expired_meanwhile(order)
    page = customer.follow(customer.client.get(r['Location'] + '?_debug_flag=fail-locking'))
    assert any('still processing' in m for m in customer.messages(page)), customer.messages(page)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert order.status == 'e'
    assert payment.state == 'pending', 'payment %s on an unpaid order after a lock timeout' % payment.state
    assert _confirmations(order) == 0
    return order, payment, sid


def test_lock_timeout_leaves_the_payment_pending_and_the_webhook_pays_the_order(lock_timeout_on_confirm, sim):
    order, payment, sid = lock_timeout_on_confirm
    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
    assert order.status == 'p' and payment.state == 'confirmed' and _confirmations(order) == 1


def test_lock_timeout_leaves_the_payment_pending_and_the_reconciliation_pays_the_order(lock_timeout_on_confirm, sim):
    order, payment, sid = lock_timeout_on_confirm
    age_for_reconciliation(payment)
    run_periodic_tasks()
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
    assert order.status == 'p' and payment.state == 'confirmed' and _confirmations(order) == 1


@pytest.mark.parametrize('event_type', ['payment.failed', 'payment_intent.cancelled', 'checkout_session.expired'])
def test_failure_of_a_confirmed_payment_is_logged_and_the_organiser_notified(
        customer, sim, admin, event_type, django_capture_on_commit_callbacks):
    from pretix.base.models import NotificationSetting, User
    settlement = plugin('settlement')
    order, payment, sid = customer.pending_order()
    sim.deliver('payment.captured', sid)
    with scopes_disabled():
        organiser = User.objects.get(email='admin@example.org')
        NotificationSetting.objects.create(user=organiser, action_type=settlement.LOG_FAILED_AFTER_CONFIRMATION,
                                           event=order.event, method='mail', enabled=True)
    mail.outbox.clear()
    # pretix hands log entries to its notification task when the transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver(event_type, sid, apply_state=False)
    assert d.status == 200, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
        assert payment.state == 'confirmed' and order.status == 'p'  # the money question stays with a human
        [entry] = order.all_logentries().filter(action_type=settlement.LOG_FAILED_AFTER_CONFIRMATION)
        text = str(entry.display())
    assert 'failed' in text and 'NodeRails dashboard' in text, text
    notices = [m for m in mail.outbox if m.to == ['admin@example.org']]
    assert len(notices) == 1, [(m.to, m.subject) for m in mail.outbox]
    assert order.code in notices[0].subject + notices[0].body


def test_stock_plugin_confirms_on_the_customers_approval(customer, sim):
    """[webhook] confirm_on defaults to ["authorized", "captured"], the plugin spec's behaviour."""
    assert plugin('conf').CONFIRM_ON == ('authorized', 'captured')
    order, payment, sid = customer.pending_order()
    [d] = sim.deliver('payment.authorized', sid)
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
    assert order.status == 'p'
