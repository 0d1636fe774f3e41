"""Quota exhausted when a late crypto payment arrives: handled like pretix's own providers.

pretix's contract (pretix/base/payment.py, execute_payment docstring): ``payment.confirm()`` raises
``Quota.QuotaExceededException`` only when the order is past its payment term and something is
sold out; the payment itself stays confirmed (money was received), the order is not marked paid,
pretix logs ``pretix.event.order.quotaexceeded``. Built-ins: Stripe/PayPal execute_payment turn it
into ``PaymentException(str(e))``; their webhooks swallow it and answer 200.
"""

from datetime import timedelta

import pytest
from realpretix import make_order, plugin
from django.test import RequestFactory
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


def _expire_and_sell_out(shop, order):
    """Order expired (status e) and its quota meanwhile sold to someone else."""
    with scopes_disabled():
        order.status = 'e'
        order.expires = now() - timedelta(hours=1)
        order.save()
        shop.quota.size = 1
        shop.quota.save()
        make_order(shop, state='confirmed', status='p', code='OTHER1')


@pytest.fixture
def late(customer, sim):
    """The customer placed the order, paid in NodeRails, but came back only after expiry."""
    customer.to_confirm()
    sid = customer.state['session_id']
    r, order = customer.place_order()
    customer.complete(r)  # session still OPEN -> payment waits
    sim.mark_paid(sid)
    _expire_and_sell_out(customer.shop, order)
    with scopes_disabled():
        return order, order.payments.get(), sid


def test_webhook_after_sellout_confirms_payment_not_order(late, sim):
    order, payment, sid = late
    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200, d.response_body  # like Stripe: no redelivery, retrying cannot help
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
        assert payment.state == 'confirmed', 'money was received: the payment is confirmed'
        assert order.status == 'e', 'the order must not become paid over an exhausted quota'
        # pretix's own 'pretix.event.order.quotaexceeded' entry is written inside confirm()'s atomic
        # block and rolled back with the exception, for built-in providers too. The plugin logs it
        # itself (and pretix can notify the organiser), who decides: refund or re-activate.
        [entry] = order.all_logentries().filter(action_type=plugin('settlement').LOG_CONFIRMED_NOT_PAID)
        assert 'could not be marked as paid' in str(entry.display()) and 'no longer available' in str(entry.display())
    # redelivery does not change that
    sim.deliver('payment.captured', sid, times=2)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'e'


def test_execute_payment_after_sellout_raises_quota_message(late, sim, customer):
    """execute_payment itself (pretix's views refuse to call it for such orders, API/plugins may):
    PaymentException carrying pretix's quota message, payment confirmed, order unpaid."""
    from pretix.base.payment import PaymentException
    order, payment, sid = late
    request = RequestFactory().get('/')
    request.session = customer.client.session
    request.session[plugin('payment').SESSION_KEY] = {
        'event': order.event.pk, 'session_id': sid, 'amount': '12.50', 'currency': 'USD',
        'testmode': False, 'payment': payment.pk}
    request.event = order.event
    with scopes_disabled():
        provider = payment.payment_provider
        payment.state = 'created'
        payment.save()
        with pytest.raises(PaymentException) as exc:
            provider.execute_payment(request, payment)
        assert 'no longer available' in str(exc.value)
        payment.refresh_from_db()
        order.refresh_from_db()
        assert payment.state == 'confirmed' and order.status == 'e'
