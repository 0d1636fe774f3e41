"""The checkout and the refund in the event's currency, not only the stock USD shop: EUR, and JPY,
which pretix and NodeRails write without decimals; and an event in another currency than the
provider's, where the method must not be offered."""

from decimal import Decimal

import pytest
from realpretix import IDENTIFIER, refund_via_backend, setting_key
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db

# Ticket price, a partial refund, and how NodeRails receives both (the currency's decimal places).
SHAPES = {
    'EUR': (Decimal('12.50'), '5.00', '12.50', '5.00'),
    'JPY': (Decimal('1250'), '500', '1250', '500'),
}


@pytest.fixture(params=sorted(SHAPES))
def shop_in(request, configured):
    """The shared shop, its event and the provider both in the parametrised currency."""
    currency = request.param
    with scopes_disabled():
        configured.event.currency = currency
        configured.event.save()
        configured.item.default_price = SHAPES[currency][0]
        configured.item.save()
        configured.event.settings.set(setting_key('currency'), currency)
    return currency


def test_checkout_and_refund_in_the_event_currency(shop_in, customer, sim, admin):
    currency = shop_in
    price, partial, sent_price, sent_partial = SHAPES[currency]
    customer.to_confirm()
    sid = customer.state['session_id']
    [create] = sim.requests_for('create_session')
    assert (create.json['amount'], create.json['currency']) == (sent_price, currency)
    sim.mark_paid(sid)
    r, order = customer.place_order()
    customer.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert (order.status, payment.state, payment.amount, order.total) == ('p', 'confirmed', price, price)

    refund_via_backend(admin, order, payment, partial)
    [call] = sim.requests_for('refund')
    assert call.json['amount'] == sent_partial
    [nr_refund] = sim.refunds.values()
    [d] = sim.complete_refund(nr_refund.refund_id)
    assert d.status == 200, d.response_body
    with scopes_disabled():
        refund = order.refunds.get()
        assert (refund.state, refund.amount) == ('done', Decimal(partial))
        payment.refresh_from_db()
        assert payment.refunded_amount == Decimal(partial)


def test_event_in_another_currency_than_the_provider_hides_the_method(customer, sim):
    with scopes_disabled():
        customer.shop.event.settings.set(setting_key('currency'), 'EUR')   # the event sells in USD
    customer.add_to_cart()
    customer.questions()
    page = customer.client.get(customer.url('/checkout/payment/')).content.decode()
    assert 'value="%s"' % IDENTIFIER not in page
    r = customer.choose_payment()   # a forged form choosing it anyway
    assert customer.state is None and not (r.status_code == 302 and r['Location'].endswith('/checkout/confirm/'))
    assert sim.requests == []
