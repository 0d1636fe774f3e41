"""Money is never held in silence: every paid NodeRails session ends in an order or a refund without
relying on a webhook, [webhook] confirm_on holds on every path, refunds reach a final state, and the
organiser hears of every case that needs a person through pretix's own notifications.

Carts hold three tickets and a payment fee (38.50), so an amount taken from one ticket would show."""

import json
from datetime import timedelta

import pytest
from realpretix import (
    EVENT, IDENTIFIER, MODULE, ORG, age_for_reconciliation, plugin, refund_via_backend, run_periodic_tasks, setting_key,
)
from django.core import mail
from django.utils.dateparse import parse_datetime
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db

CART_TOTAL = '38.50'   # 3 x 12.50 and a 1.00 payment fee
# The log actions the organiser subscribes to (notifications.py), spelled out: the test names what
# pretix must e-mail, whatever the plugin's constants say.
NOTIFIED = ['pretix.plugins.%s.%s' % (MODULE, action) for action in (
    'money_held', 'refund_stalled', 'unclaimed.refunded', 'unclaimed.refund_failed', 'unclaimed.unanswered',
    'capture_unreported', 'confirmed_not_paid', 'paid_twice', 'failed_after_confirmation', 'refund_unclear',
    'refund_rejected')]


@pytest.fixture
def shopper(shop, customer):
    shop.event.settings.set(setting_key('_fee_abs'), '1.00')
    return customer


@pytest.fixture
def organiser(admin, shop):
    """The backend user, subscribed by e-mail to the plugin's notifications about held money."""
    from pretix.base.models import NotificationSetting, User
    with scopes_disabled():
        user = User.objects.get(email='admin@example.org')
        for action in NOTIFIED:
            NotificationSetting.objects.create(user=user, action_type=action, event=shop.event, method='mail',
                                               enabled=True)
    mail.outbox.clear()
    return admin


@pytest.fixture
def capture_only(monkeypatch):
    """[webhook] confirm_on = ["captured"]; the plugin reads it at call time, like the HTTP timeout."""
    monkeypatch.setattr(plugin('conf'), 'CONFIRM_ON', ('captured',))


@pytest.fixture
def tasks(django_capture_on_commit_callbacks):
    """The periodic task, with pretix's notification e-mails sent when its transactions commit."""
    def run(unavailable=False):
        with django_capture_on_commit_callbacks(execute=True):
            if unavailable:
                with pytest.raises(plugin('client').NodeRailsUnavailable):
                    run_periodic_tasks()
            else:
                run_periodic_tasks()
    return run


def _to_confirm(customer):
    """Three tickets, questions, the NodeRails method: the confirm page's session id."""
    customer.add_to_cart(count=3)
    customer.questions()
    customer.choose_payment()
    return customer.state['session_id']


def _checkout(sid):
    with scopes_disabled():
        return plugin('models').CartCheckout.objects.get(session_id=sid)


def _update_checkout(sid, **values):
    with scopes_disabled():
        assert plugin('models').CartCheckout.objects.filter(session_id=sid).update(**values) == 1


def _notices():
    return [m for m in mail.outbox if m.to == ['admin@example.org']]


# -- paid checkouts are found without their webhook ------------------------------------------------------


def _no_webhook_url(sim, sid):
    sim.configure(webhook_url=None)
    sim.mark_paid(sid)


def _pretix_unreachable(sim, sid):
    """NodeRails sends the capture and its five retries (docs/noderails-contract.md); none gets through."""
    def refused(url, headers, body):
        raise ConnectionRefusedError('pretix is down')
    sim.webhook_sender = refused
    sim.mark_paid(sid)
    deliveries = sim.deliver('payment.captured', sid, times=6)
    assert [d.status for d in deliveries] == [None] * 6 and all(d.error for d in deliveries)


@pytest.mark.parametrize('lost', [_no_webhook_url, _pretix_unreachable], ids=['no_webhook_url', 'pretix_unreachable'])
def test_paid_checkout_without_webhook_or_order_is_refunded_once(shopper, sim, organiser, tasks, lost):
    sid = _to_confirm(shopper)
    lost(sim, sid)   # the customer paid and closed the tab before Place order
    sim.clear_requests()
    tasks()
    assert _checkout(sid).state == 'started' and sim.requests_for('get_session') == [], 'asked about a fresh checkout'
    _update_checkout(sid, created=now() - timedelta(minutes=10))   # "older than a few minutes"
    tasks()
    checkout = _checkout(sid)
    assert checkout.state == 'open' and str(checkout.amount) == CART_TOTAL
    assert checkout.payment_intent_id == sim.session(sid)['paymentIntentId']
    assert sim.requests_for('refund') == []   # the customer may still place the order
    _update_checkout(sid, refund_after=now() - timedelta(minutes=1))
    tasks()
    [call] = sim.requests_for('refund')
    assert call.json['amount'] == CART_TOTAL and len(sim.refunds) == 1
    assert _checkout(sid).state == 'refunded'
    [notice] = _notices()
    assert 'refunded' in notice.subject and sid in notice.body and CART_TOTAL in notice.body, notice.body
    tasks()
    assert len(sim.requests_for('refund')) == 1 and len(_notices()) == 1


def test_expired_checkout_is_marked_and_an_unanswered_one_kept_and_reported(shopper, sim, organiser, tasks):
    unclaimed = plugin('unclaimed')
    sid = _to_confirm(shopper)
    sim.expire(sid)
    with scopes_disabled():   # a checkout NodeRails does not know (404), from before a data loss
        unknown = plugin('models').CartCheckout.objects.create(
            session_id='cs_unknown_to_noderails', event=shopper.shop.event, amount='12.50', currency='USD')
    for checkout_sid in (sid, unknown.session_id):
        _update_checkout(checkout_sid, created=now() - unclaimed.CHECKOUT_RETENTION - timedelta(days=1))
    tasks()
    assert _checkout(sid).state == unclaimed.STATE_EXPIRED
    kept = _checkout(unknown.session_id)
    assert kept.state == 'started' and kept.checks == 1 and kept.unanswered_reported is not None
    assert kept.next_check - now() > unclaimed.ASK_FIRST_INTERVAL - timedelta(minutes=1)
    from pretix.base.models import LogEntry
    with scopes_disabled():
        [entry] = LogEntry.objects.filter(action_type=unclaimed.LOG_UNANSWERED)
        assert unknown.session_id in str(entry.display())
    [notice] = _notices()   # e-mailed to the organiser, with what to do
    assert unknown.session_id in notice.body and 'NodeRails dashboard' in notice.body, notice.body
    tasks()   # not due again yet, and reported once only
    assert _checkout(unknown.session_id).checks == 1
    with scopes_disabled():
        assert LogEntry.objects.filter(action_type=unclaimed.LOG_UNANSWERED).count() == 1
    _update_checkout(unknown.session_id, next_check=now() - timedelta(minutes=1))
    tasks()
    assert _checkout(unknown.session_id).checks == 2   # asked again, never deleted
    # only the expired one is bookkeeping to drop; the unanswered one stays
    assert _checkout(unknown.session_id).state == 'started'
    with scopes_disabled():
        assert not plugin('models').CartCheckout.objects.filter(session_id=sid).exists()


def test_load_is_bounded_oldest_first(configured, sim, tasks, monkeypatch):
    unclaimed = plugin('unclaimed')
    monkeypatch.setattr(unclaimed, 'ASK_BATCH', 2, raising=False)
    sids = []
    with scopes_disabled():
        for age in (30, 20, 10):
            session = sim.create_session('12.50', app_id=next(iter(sim.credentials)))
            plugin('models').CartCheckout.objects.create(
                session_id=session['sessionId'], event=configured.event, amount='12.50', currency='USD')
            _update_checkout(session['sessionId'], created=now() - timedelta(minutes=age))
            sids.append(session['sessionId'])
    sim.clear_requests()
    tasks()
    asked = [r.path.rsplit('/', 1)[-1] for r in sim.requests_for('get_session')]
    assert asked == sids[:2]
    tasks()   # the two asked wait their interval; the third is asked now
    asked = [r.path.rsplit('/', 1)[-1] for r in sim.requests_for('get_session')]
    assert asked == sids


# -- [webhook] confirm_on = ["captured"] on every path ------------------------------------------------------


def test_capture_only_place_order_and_reconciliation_wait_for_the_capture(capture_only, shopper, sim):
    sid = _to_confirm(shopper)
    [d] = sim.deliver('payment.authorized', sid)   # approved: the public session says PAID, nothing captured
    assert d.status == 200, d.response_body
    r, order = shopper.place_order()
    shopper.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert order.status == 'n' and payment.state == 'pending', (order.status, payment.state)
    age_for_reconciliation(payment)
    run_periodic_tasks()
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
    assert order.status == 'n' and payment.state == 'pending'
    # the capture, as NodeRails' payment_intent events send it: the intent only
    [d] = sim.deliver('payment_intent.captured', sid, data={'checkoutSessionId': None})
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
    assert order.status == 'p'


def test_capture_only_approval_whose_capture_never_arrives_reaches_the_organiser_once(
        capture_only, shopper, sim, organiser, tasks):
    """confirm_on = ["captured"] and the capture webhook lost: the session says PAID (approved), which
    that setting does not count, and NodeRails cannot be asked about the capture. Before the
    reconciliation stops asking, the organiser is told once; the payment stays pending."""
    sid = _to_confirm(shopper)
    [d] = sim.deliver('payment.authorized', sid)
    assert d.status == 200, d.response_body
    r, order = shopper.place_order()
    shopper.complete(r)
    with scopes_disabled():
        payment = order.payments.get()
    age_for_reconciliation(payment)
    tasks()
    assert _notices() == []
    with scopes_disabled():
        type(payment).objects.filter(pk=payment.pk).update(created=now() - timedelta(hours=12, minutes=5))
    tasks()
    [notice] = _notices()
    assert order.code in notice.subject and CART_TOTAL in notice.body, (notice.subject, notice.body)
    assert 'NodeRails dashboard' in notice.body and 'mark' in notice.body
    tasks()
    assert len(_notices()) == 1   # once
    with scopes_disabled():
        payment.refresh_from_db()
    assert payment.state == 'pending'
    assert plugin('signals').RECONCILE_MAX_AGE > timedelta(hours=12, minutes=5), 'told before the asking stops'


def test_capture_only_capture_naming_only_the_intent_settles_the_unclaimed_checkout(
        capture_only, shopper, sim, tasks):
    sid = _to_confirm(shopper)
    [d] = sim.deliver('payment.authorized', sid)
    assert d.status == 200, d.response_body
    intent = sim.session(sid)['paymentIntentId']
    assert _checkout(sid).payment_intent_id == intent and _checkout(sid).state == 'started'
    [d] = sim.deliver('payment_intent.captured', sid, data={'checkoutSessionId': None})
    assert d.status == 200 and b'recorded' in d.response_body, d.response_body
    assert _checkout(sid).state == 'open'
    _update_checkout(sid, refund_after=now() - timedelta(minutes=1))
    tasks()
    [call] = sim.requests_for('refund')
    assert call.path == '/payments/intents/%s/refund' % intent and call.json['amount'] == CART_TOTAL
    assert _checkout(sid).state == 'refunded'


# -- refunds reach a final state -------------------------------------------------------------------------


def _paid_order(customer, sim):
    sid = _to_confirm(customer)
    sim.mark_paid(sid)
    r, order = customer.place_order()
    customer.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert order.status == 'p' and str(payment.amount) == CART_TOTAL
    return order, payment


def _refresh(obj):
    with scopes_disabled():
        obj.refresh_from_db()


def _simulated_time(refund, age):
    """The refund was sent ``age`` ago and its pause before the next question is over."""
    from pretix.base.models import OrderRefund
    with scopes_disabled():
        refund.refresh_from_db()
        info = dict(refund.info_data, next_check=(now() - timedelta(seconds=1)).isoformat())
        OrderRefund.objects.filter(pk=refund.pk).update(created=now() - age, info=json.dumps(info))
        refund.refresh_from_db()


def test_refund_answered_502_for_a_day_is_reconciled_once_and_the_organiser_notified(
        shopper, sim, organiser, tasks):
    order, payment = _paid_order(shopper, sim)
    sim.fail_next('refund', status=502, count=None)
    assert refund_via_backend(organiser, order, payment, '25.00').status_code == 302
    with scopes_disabled():
        refund = order.refunds.get()
    assert refund.state == 'transit' and refund.info_data['status'] == 'UNKNOWN'
    pauses = []
    for hours in (1, 4, 9, 16, 23):
        _simulated_time(refund, timedelta(hours=hours))
        tasks(unavailable=True)
        _refresh(refund)
        pauses.append(parse_datetime(refund.info_data['next_check']) - now())
        tasks()   # within the pause: not asked
    assert len(sim.requests_for('refund')) == 1 + 5
    assert pauses == sorted(pauses) and pauses[0] < pauses[-1], pauses   # growing intervals
    assert _notices() == [] and refund.state == 'transit'
    _simulated_time(refund, timedelta(hours=24, minutes=1))
    tasks(unavailable=True)
    [notice] = _notices()
    assert order.code in notice.subject and '25.00' in notice.body, (notice.subject, notice.body)
    page = organiser.get('/control/event/%s/%s/orders/%s/' % (ORG, EVENT, order.code)).content.decode()
    assert 'Needs attention' in page
    _simulated_time(refund, timedelta(hours=30))
    tasks(unavailable=True)
    assert len(_notices()) == 1   # once
    sim.clear_faults()   # NodeRails answers again
    _simulated_time(refund, timedelta(hours=36))
    tasks()
    _refresh(refund)
    [nr_refund] = sim.refunds.values()
    assert refund.state == 'transit' and refund.info_data['refund_id'] == nr_refund.refund_id
    assert nr_refund.amount == '25.00'
    calls = sim.requests_for('refund')
    assert len({c.header('Idempotency-Key') for c in calls}) == 1
    sim.complete_refund(nr_refund.refund_id)
    _refresh(refund)
    assert refund.state == 'done' and len(sim.refunds) == 1
    tasks()
    assert len(sim.requests_for('refund')) == len(calls)


# -- a payment failed after the money was taken ------------------------------------------------------------


def test_underpaid_session_notifies_the_amount_held_and_refunds_it_in_one_click(
        shopper, sim, organiser, django_capture_on_commit_callbacks):
    sid = _to_confirm(shopper)
    sim.mark_paid(sid, amount='30.00')   # NodeRails took less than the cart's 38.50
    with django_capture_on_commit_callbacks(execute=True):
        r, order = shopper.place_order()
        shopper.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert payment.state == 'failed' and order.status == 'n'
    [notice] = _notices()
    assert order.code in notice.subject and '30.00 USD' in notice.body and 'Refund' in notice.body, notice.body
    detail = '/control/event/%s/%s/orders/%s/' % (ORG, EVENT, order.code)
    page = organiser.get(detail).content.decode()
    assert 'Refund the money held' in page
    url = '/control/event/%s/%s/noderails/payments/%d/refund-held/' % (ORG, EVENT, payment.pk)
    assert url in page
    sim.clear_requests()
    r = organiser.post(url)
    assert r.status_code == 302 and r['Location'].endswith(detail), r
    intent = sim.session(sid)['paymentIntentId']
    [call] = sim.requests_for('refund')
    assert call.path == '/payments/intents/%s/refund' % intent and call.json['amount'] == '30.00'
    assert call.header('Idempotency-Key') == plugin('settlement').held_refund_key(intent)
    assert organiser.post(url).status_code == 302   # a second click
    assert len(sim.requests_for('refund')) == 1 and len(sim.refunds) == 1
    assert 'Refund the money held' not in organiser.get(detail).content.decode()
    # NodeRails settles it and reports it, twice: money the order never counted, so no refund of the order.
    [held] = sim.refunds.values()
    deliveries = sim.complete_refund(held.refund_id)
    deliveries += sim.deliver('payment_intent.refunded', sid, refund_id=held.refund_id)
    assert [d.status for d in deliveries] == [200, 200], deliveries
    with scopes_disabled():
        payment.refresh_from_db()
        assert not order.refunds.exists(), [(r.source, r.state, r.amount) for r in order.refunds.all()]
    assert payment.info_data['held_refund']['status'] == 'COMPLETED'


def test_money_arriving_for_a_canceled_order_reaches_the_organiser(shopper, sim, organiser,
                                                                   django_capture_on_commit_callbacks):
    """Found by the ledger machine: the customer places the order before the payment is taken, the
    organiser cancels the order, then NodeRails captures. pretix confirms a payment into a canceled
    order with only a line in its server log; the organiser now hears of it, with what to do."""
    from pretix.base.services.orders import cancel_order
    sid = _to_confirm(shopper)
    r, order = shopper.place_order()   # not paid yet: the order waits for the payment
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'n'
    cancel_order.apply(args=(order.pk,), kwargs={'send_mail': False}).get()
    sim.mark_paid(sid)
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver('payment.captured', sid, times=1)
    assert (d.status, d.response_body) == (200, b'Payment confirmed; its order is canceled, the organiser is notified')
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert (order.status, payment.state) == ('c', 'confirmed')
    [notice] = _notices()
    assert order.code in notice.subject, notice.subject
    assert 'canceled before the money arrived' in notice.body and 'Order → Refund' in notice.body, notice.body


def test_money_arriving_for_an_order_already_paid_reaches_the_organiser(shopper, sim, organiser,
                                                                        django_capture_on_commit_callbacks):
    """The order waits for the crypto payment, the organiser marks it paid (the customer paid by bank
    transfer after all), then NodeRails captures. pretix confirms a payment into a paid order with only
    a line in its server log, not even its "overpaid" entry; the organiser now hears of it."""
    sid = _to_confirm(shopper)
    r, order = shopper.place_order()
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'n'
        order.payments.create(provider='manual', amount=order.total, state='created').confirm()
        order.refresh_from_db()
        assert order.status == 'p'
    sim.mark_paid(sid)
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver('payment.captured', sid, times=1)
    assert (d.status, d.response_body) == (200, b'Payment confirmed; its order was already paid, the organiser is notified')
    with scopes_disabled():
        order.refresh_from_db()
        crypto = order.payments.get(provider=IDENTIFIER)
    assert (order.status, crypto.state) == ('p', 'confirmed')
    [notice] = _notices()
    assert order.code in notice.subject, notice.subject
    assert 'paid this order twice' in notice.body and 'Order → Refund' in notice.body, notice.body
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver('payment.captured', sid, times=1)   # NodeRails' redelivery: told once
    assert len(_notices()) == 1


@pytest.mark.parametrize('case, data, advice', [
    ('failed_after_confirmation', {'local_id': 1, 'status': 'FAILED'}, 'If NodeRails did not take the money'),
    ('refund_unclear', {'local_id': 1, 'amount': '5.00', 'reason': 'timeout'}, 'Do not refund this amount again'),
    ('refund_rejected', {'local_id': 1, 'amount': '5.00', 'message': 'refused'}, 'Refund the customer again'),
])
def test_each_order_case_for_a_person_says_what_to_do(shopper, organiser, django_capture_on_commit_callbacks,
                                                      case, data, advice):
    """The notification, not only the order's log, says what happened and what to do."""
    _to_confirm(shopper)
    r, order = shopper.place_order()
    with scopes_disabled(), django_capture_on_commit_callbacks(execute=True):
        order.log_action('pretix.plugins.%s.%s' % (MODULE, case), data=data)
    [notice] = _notices()
    assert order.code in notice.subject and advice in notice.body, notice.body
