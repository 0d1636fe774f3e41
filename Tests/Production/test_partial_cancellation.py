"""pretix cancels one date of an event series: an order with tickets for two dates is changed, and
the cancelled ticket refunded, by pretix's own cancel_event task, which calls the plugin's
execute_refund inside its transaction. NodeRails' payment.refunded for that refund reaches a worker
while the transaction is still open: pretix must end up with exactly one refund."""

from datetime import timedelta
from decimal import Decimal

from django.utils.timezone import now
from django_scopes import scopes_disabled

from conftest import in_thread, plugin
from harness import IDENTIFIER, LIVE, ORG, wait_until

SERIES = 'forge-series'
PRICE = Decimal('12.50')


def _series(stack):
    """A series with two dates, the plugin enabled and configured; its webhook URL on worker 0."""
    from pretix.base.models import Event
    from pretix_testkit import configure_provider
    with scopes_disabled():
        event = Event.objects.filter(organizer=stack.shop.organizer, slug=SERIES).first()
        if event is None:
            event = Event.objects.create(organizer=stack.shop.organizer, name='Forge Series', slug=SERIES,
                                         currency='USD', live=True, has_subevents=True,
                                         date_from=now() + timedelta(days=30), plugins='')
            event.enable_plugin(plugin().__name__)
            event.save()
            item = event.items.create(name='Day ticket', default_price=PRICE, admission=True, active=True)
            for day in (1, 2):
                date = event.subevents.create(name='Day %d' % day, active=True,
                                              date_from=now() + timedelta(days=30 + day))
                event.quotas.create(name='Day %d' % day, size=None, subevent=date).items.add(item)
            configure_provider(event, IDENTIFIER, stack.sim)
    return event


def _paid_order_for_both_dates(stack, event):
    """An order with one ticket per date, paid with one NodeRails payment of 25.00."""
    from django.db import transaction
    from pretix.base.models import Order
    sid = stack.sim.create_session('25.00', 'USD', app_id=LIVE.app_id, reference='forge/series')['sessionId']
    session = stack.sim.mark_paid(sid)
    references = plugin('models').NodeRailsReference
    with scopes_disabled(), transaction.atomic():
        item = event.items.get()
        order = Order.objects.create(
            event=event, status=Order.STATUS_PAID, email='buyer@example.org', datetime=now(),
            expires=now() + timedelta(days=3), total=2 * PRICE, sales_channel=stack.shop.web, locale='en')
        for date in event.subevents.order_by('date_from'):
            order.positions.create(item=item, subevent=date, price=PRICE)
        order.create_transactions(is_new=True)
        payment = order.payments.create(
            provider=IDENTIFIER, amount=2 * PRICE, state='confirmed', payment_date=now(),
            info='{"session_id": "%s", "payment_intent_id": "%s"}' % (sid, session['paymentIntentId']))
        for reference in (sid, session['paymentIntentId']):
            references.objects.create(reference=reference, order=order, payment=payment)
    return order, payment


def _cancel_first_date(event):
    from pretix.base.services.cancelevent import cancel_event
    first = event.subevents.order_by('date_from').first()
    cancel_event.apply(kwargs=dict(
        event=event.pk, subevent=first.pk, auto_refund=True, keep_fee_fixed='0.00', keep_fee_per_ticket='0.00',
        keep_fee_percentage='0.00', keep_fees=[], send=False, user=None), throw=True)


def _refunded(stack, refund_id, url):
    return stack.sim.deliver('payment.refunded', stack.sim.refunds[refund_id].session_id, refund_id=refund_id,
                             url=url, times=1)


def test_refund_webhook_during_partial_cancellation_leaves_one_refund(stack):
    event = _series(stack)
    order, payment = _paid_order_for_both_dates(stack, event)
    before = set(stack.sim.refunds)
    # NodeRails carries the refund out at once and answers slowly: its webhook arrives while
    # cancel_event's transaction (and the plugin's execute_refund in it) is still open.
    stack.sim.drip_next('refund', interval=0.02)
    webhook_url = stack.workers[0].webhook_url.replace('/%s/' % stack.shop.event.slug, '/%s/' % SERIES)
    assert '/%s/%s/' % (ORG, SERIES) in webhook_url

    cancelling = in_thread(_cancel_first_date, event)
    refund_id = wait_until(lambda: (set(stack.sim.refunds) - before) and list(set(stack.sim.refunds) - before)[0],
                           message='the refund at NodeRails')
    stack.sim.complete_refund(refund_id, webhook=False)
    assert cancelling.is_alive(), 'the cancellation ended before the webhook was sent'
    [delivery] = _refunded(stack, refund_id, webhook_url)
    cancelling.join_result()
    if delivery.status == 503:  # it waited for the cancellation's lock in vain: NodeRails redelivers
        [delivery] = _refunded(stack, refund_id, webhook_url)
    assert delivery.status == 200, (delivery.status, delivery.response_body)

    with scopes_disabled():
        order.refresh_from_db()
        refunds = [(r.state, r.amount, r.source) for r in order.refunds.exclude(state__in=('canceled', 'failed'))]
        assert order.positions.count() == 1 and order.total == PRICE
    assert refunds == [('done', PRICE, 'admin')], refunds
    assert [r for r in stack.sim.refunds if r not in before] == [refund_id]
