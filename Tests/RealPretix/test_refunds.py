"""Refunds started with pretix's normal refund button, settled through NodeRails."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from realpretix import EVENT, LIVE, ORG, _errors, plugin, refund_via_backend, run_periodic_tasks, setting_key, wait_until
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(customer, sim):
    """An order paid through the real checkout (payment confirmed with a NodeRails payment intent)."""
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid)
    r, order = customer.place_order()
    customer.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
    assert order.status == 'p' and payment.state == 'confirmed'
    return order, payment, sim.session(sid)['paymentIntentId']


def _ask_again_now(order):
    """The reconciliation's next run, its minimum age passed."""
    with scopes_disabled():
        for refund in order.refunds.all():
            order.refunds.filter(pk=refund.pk).update(created=refund.created - timedelta(minutes=10))
    run_periodic_tasks()


def _ask_when_due_now(order):
    """The reconciliation's next run, each refund's pause before its next question over."""
    with scopes_disabled():
        for refund in order.refunds.all():
            info = dict(refund.info_data, next_check=(now() - timedelta(minutes=1)).isoformat())
            order.refunds.filter(pk=refund.pk).update(info=json.dumps(info))
    _ask_again_now(order)


def _refunds(order):
    with scopes_disabled():
        return sorted((r.state, r.amount) for r in order.refunds.all())


def test_refund_button_calls_noderails_with_idempotency_key(paid, sim, admin):
    order, payment, intent = paid
    r = refund_via_backend(admin, order, payment, '5.00')
    assert r.status_code == 302
    calls = sim.requests_for('refund')
    assert len(calls) == 1
    call = calls[0]
    assert call.path == '/payments/intents/%s/refund' % intent
    assert call.header('Idempotency-Key'), 'refund without Idempotency-Key'
    assert (call.header('x-app-id'), call.header('x-api-key')) == (LIVE.app_id, LIVE.api_key)
    assert call.json['amount'] == '5.00' and isinstance(call.json.get('reason'), str)
    [nr_refund] = sim.refunds.values()
    detail = admin.get('/control/event/%s/%s/orders/%s/' % (ORG, EVENT, order.code))
    assert detail.status_code == 200 and intent in detail.content.decode()
    with scopes_disabled():
        refund = order.refunds.get()
        assert refund.amount == 5 and refund.provider == payment.provider
        # NodeRails answered PENDING: not done until settled on-chain
        assert refund.state == 'transit'
        assert refund.info_data.get('refund_id') == nr_refund.refund_id

    # NodeRails settles the refund and sends payment.refunded
    [d] = sim.complete_refund(nr_refund.refund_id)
    assert d.status == 200, d.response_body
    with scopes_disabled():
        refund.refresh_from_db()
        assert refund.state == 'done'
        order.refresh_from_db()
        assert order.status == 'p'  # partial refund, order kept ('do_nothing')
    # a redelivery of the same event changes nothing
    again = sim.deliver('payment.refunded', raw_body=d.request_body, times=2)
    assert [(a.status, a.response_body) for a in again] == [(200, b'Duplicate event, already processed')] * 2
    with scopes_disabled():
        assert order.refunds.count() == 1 and order.refunds.get().state == 'done'


def test_second_event_about_a_settled_refund_is_not_a_new_refund(paid, sim, admin):
    """NodeRails documents both payment.refunded and payment_intent.refunded; getting both (two event
    ids, one refundId) must not record the refund twice."""
    order, payment, intent = paid
    refund_via_backend(admin, order, payment, '5.00')
    [nr_refund] = sim.refunds.values()
    sim.complete_refund(nr_refund.refund_id)
    [d] = sim.deliver('payment_intent.refunded', nr_refund.session_id, refund_id=nr_refund.refund_id)
    assert (d.status, d.response_body) == (200, b'Refund already recorded')
    with scopes_disabled():
        states = sorted(r.state for r in order.refunds.all())
    assert states == ['done'], 'the same NodeRails refund was recorded again: %s' % states


def test_refund_completed_immediately(paid, sim, admin):
    order, payment, intent = paid
    sim.configure(refund_status='COMPLETED')
    refund_via_backend(admin, order, payment, '12.50')
    with scopes_disabled():
        assert order.refunds.get().state == 'done'


def test_retried_refund_is_not_refunded_twice(paid, sim):
    """execute_refund retried for the same OrderRefund (e.g. after a lost answer) reuses its Idempotency-Key."""
    order, payment, intent = paid
    with scopes_disabled():
        refund = order.refunds.create(payment=payment, source='admin', state='created', amount=payment.amount,
                                      provider=payment.provider)
        provider = payment.payment_provider
        provider.execute_refund(refund)
        refund.refresh_from_db()
        refund.state = 'created'
        refund.save()
        provider.execute_refund(refund)
    keys = [c.header('Idempotency-Key') for c in sim.requests_for('refund')]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(sim.refunds) == 1


def test_refund_rejected_by_noderails_is_shown_to_organiser(paid, sim, admin):
    order, payment, intent = paid
    sim.fail_next('refund', status=400, message='Refund window closed for this chain.')
    r = refund_via_backend(admin, order, payment, '5.00')
    with scopes_disabled():
        refund = order.refunds.get()
        assert refund.state == 'failed'
    page = admin.get(r['Location']).content.decode()
    assert 'Refund window closed for this chain.' in page
    assert sim.refunds == {}


def test_refund_while_noderails_is_unreachable_fails_cleanly(paid, sim, admin):
    """Nothing reached NodeRails (no connection): a clear outcome, so the refund fails and the organiser
    may try again; nothing was sent."""
    order, payment, intent = paid
    with scopes_disabled():
        order.event.settings.set(setting_key('api_base_url'), 'http://127.0.0.1:%d' % _closed_port())
    r = refund_via_backend(admin, order, payment, '5.00')
    assert r.status_code == 302
    with scopes_disabled():
        assert order.refunds.get().state == 'failed'
        order.refresh_from_db()
        payment.refresh_from_db()
        assert order.status == 'p' and payment.state == 'confirmed'
    assert sim.requests_for('refund') == [] and sim.refunds == {}


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_refund_started_in_noderails_dashboard_is_recorded_as_external(paid, sim):
    order, payment, intent = paid
    session_id = payment.info_data.get('session_id')
    sim.deliver('payment.refunded', session_id, amount='2.00', data={'refundId': 'rf_dashboard_1'})
    with scopes_disabled():
        external = order.refunds.get()
        assert external.state == 'external' and external.amount == 2


def test_refund_timeout_is_not_reported_failed_and_settles_once(paid, sim, admin, http_timeout):
    """NodeRails takes longer than the plugin's timeout but does process the refund. The outcome is
    unknown to pretix, so the OrderRefund must stay open (not 'failed', which invites the organiser
    to refund again under a new Idempotency-Key). Its payment.refunded names a refund id pretix has not
    learnt, which could as well be a dashboard refund: it is answered 503, NodeRails' answer to the
    refund sent again names it, and the redelivery finds it recorded. The money goes back once."""
    order, payment, intent = paid
    http_timeout(1.0)
    held = sim.hold_next('refund')
    refund_via_backend(admin, order, payment, '5.00')
    held.release()   # NodeRails carries it out after the plugin gave up
    assert wait_until(lambda: len(sim.refunds) == 1, timeout=10), 'simulator did not process the late refund'
    with scopes_disabled():
        refund = order.refunds.get()
        assert refund.state != 'failed', 'refund of unknown outcome reported as failed'
    [nr_refund] = sim.refunds.values()
    deliveries = sim.complete_refund(nr_refund.refund_id)
    assert deliveries and all(d.status == 503 for d in deliveries), [d.response_body for d in deliveries]
    assert _refunds(order) == [('transit', Decimal('5.00'))]
    _ask_again_now(order)
    assert _refunds(order) == [('done', Decimal('5.00'))]
    document = json.loads(deliveries[0].request_body)
    [again] = sim.deliver(document['type'], payment.info_data['session_id'], document=document, times=1)
    assert (again.status, again.response_body) == (200, b'Refund already recorded')
    assert list(sim.refunds) == [nr_refund.refund_id]
    assert len({c.header('Idempotency-Key') for c in sim.requests_for('refund')}) == 1
    # Found by the ledger machine: the deliveries answered 503 were on the order's log as if acted
    # on, and the redelivery once more.
    with scopes_disabled():
        logged = [entry.parsed_data.get('event_id')
                  for entry in order.all_logentries().filter(action_type=plugin('settlement').LOG_ACTION)]
    assert logged.count(document['id']) == 1, logged


# -- no clear answer: the refund stays open, is never offered twice, and settles once ---------------------

# pretix's answer to a refund of more than a payment has left that is not refunded or on its way.
NOT_YET_REFUNDED = 'You can not refund more than the amount of a payment that is not yet refunded.'

# What the refund call meets, and whether NodeRails carried the refund out meanwhile.
UNCLEAR = {
    'timeout': lambda sim: sim.hold_next('refund'),    # carried out once released, after the deadline
    'dropped_after_sending': lambda sim: sim.drop_next('refund'),  # connection closed, nothing answered
    '5xx': lambda sim: sim.fail_next('refund', status=502),
    'unreadable_2xx': lambda sim: sim.garble_next('refund'),  # carried out, body not JSON
}


def _log_texts(order, action):
    with scopes_disabled():
        return [str(e.display()) for e in order.all_logentries().filter(action_type=action)]


@pytest.mark.parametrize('outcome', list(UNCLEAR))
def test_refund_without_a_clear_answer_stays_in_transit_and_settles_once(paid, sim, admin, http_timeout, outcome):
    order, payment, intent = paid
    http_timeout(1.0)
    fault = UNCLEAR[outcome](sim)
    refund_via_backend(admin, order, payment, '5.00')
    settlement = plugin('settlement')
    with scopes_disabled():
        refund = order.refunds.get()
        assert refund.state == 'transit', 'a refund of unknown outcome must stay open, not %s' % refund.state
        payment.refresh_from_db()
        assert payment.refunded_amount == Decimal('5.00')
    # The organiser is told, on the order, and pretix can notify about it.
    [text] = _log_texts(order, settlement.LOG_REFUND_UNCLEAR)
    assert '5.00' in text and 'do not refund this amount again' in text, text
    from pretix.base.notifications import get_all_notification_types
    assert settlement.LOG_REFUND_UNCLEAR in get_all_notification_types(order.event)
    # pretix does not offer the money on its way a second time: 7.50 of the order is left to
    # refund, and a refund of all 12.50 from the payment is refused for exactly that reason.
    with scopes_disabled():
        assert order.payment_refund_sum == Decimal('7.50')
    again = refund_via_backend(admin, order, payment, '12.50', total='7.50')
    assert again.status_code == 200, (again.status_code, again.get('Location'))
    assert NOT_YET_REFUNDED in [str(m) for m in again.context['messages']], _errors(again)
    with scopes_disabled():
        assert order.refunds.count() == 1
    assert len(sim.requests_for('refund')) == 1

    # The reconciliation asks again with the same Idempotency-Key: NodeRails answers with the refund
    # it made (or makes it now, if it never got it); the webhook then completes it. One refund, once.
    sim.clear_faults()
    fault.release()
    assert wait_until(lambda: outcome not in ('timeout',) or len(sim.refunds) == 1, timeout=10)
    with scopes_disabled():
        order.refunds.update(created=refund.created - timedelta(minutes=10))
    run_periodic_tasks()
    calls = sim.requests_for('refund')
    assert len(calls) == 2 and len({c.header('Idempotency-Key') for c in calls}) == 1
    [nr_refund] = sim.refunds.values()
    with scopes_disabled():
        refund.refresh_from_db()
        assert refund.state == 'transit' and refund.info_data['refund_id'] == nr_refund.refund_id
    sim.complete_refund(nr_refund.refund_id)
    with scopes_disabled():
        assert sorted(r.state for r in order.refunds.all()) == ['done']
        payment.refresh_from_db()
        assert payment.refunded_amount == Decimal('5.00')


def test_refund_rejected_when_asked_again_is_marked_failed(paid, sim, admin):
    """Asked again with the same Idempotency-Key, NodeRails refuses: it never carried the refund out."""
    order, payment, intent = paid
    sim.fail_next('refund', status=503)
    refund_via_backend(admin, order, payment, '5.00')
    with scopes_disabled():
        refund = order.refunds.get()
        order.refunds.update(created=refund.created - timedelta(minutes=10))
    sim.fail_next('refund', status=409, message='Refund window closed.')
    run_periodic_tasks()
    with scopes_disabled():
        refund.refresh_from_db()
        assert refund.state == 'failed'
    [text] = _log_texts(order, plugin('settlement').LOG_REFUND_REJECTED)
    assert 'Refund window closed.' in text
    assert sim.refunds == {}


def test_refund_rejected_after_another_completed_leaves_the_payment_refundable(paid, sim, admin):
    """Found by the ledger machine: 1.00 refunded (on its way), then the remaining 11.50 sent but answered
    502. pretix marks the payment refunded when the 1.00 completes, counting the open 11.50 as refunded;
    NodeRails then rejects the 11.50 when asked again. The payment stayed "refunded" with 1.00 refunded
    of 12.50, and pretix no longer offered the rest for refund. Now it is confirmed again."""
    order, payment, intent = paid
    refund_via_backend(admin, order, payment, '1.00')
    [first] = sim.refunds.values()
    sim.fail_next('refund', status=502)
    refund_via_backend(admin, order, payment, '11.50')
    sim.complete_refund(first.refund_id)
    with scopes_disabled():
        payment.refresh_from_db()
    assert payment.state == 'refunded'   # pretix's doing: the 11.50 in transit counts
    sim.fail_next('refund', status=409, message='Refund window closed.')
    _ask_again_now(order)
    assert _refunds(order) == [('done', Decimal('1.00')), ('failed', Decimal('11.50'))]
    with scopes_disabled():
        payment.refresh_from_db()
        assert (payment.state, payment.refunded_amount) == ('confirmed', Decimal('1.00'))
        assert order.payment_refund_sum == Decimal('11.50')


def test_refunded_event_without_refund_id_is_settled_by_asking_noderails(paid, sim, admin):
    """NodeRails reports a refund without its id (and with the intent's amount): pretix cannot tell which
    refund that is, so it settles none on the event's word; it asks NodeRails about its open refund again
    (the same request and Idempotency-Key), and NodeRails' answer settles it. One refund, everywhere."""
    order, payment, intent = paid
    refund_via_backend(admin, order, payment, '5.00')
    [nr_refund] = sim.refunds.values()
    sim.complete_refund(nr_refund.refund_id, webhook=False)
    [d] = sim.deliver('payment.refunded', payment.info_data['session_id'])
    assert d.status == 200, d.response_body
    assert b'refundId' not in d.request_body
    assert _refunds(order) == [('transit', Decimal('5.00'))]
    _ask_again_now(order)
    assert _refunds(order) == [('done', Decimal('5.00'))]
    calls = sim.requests_for('refund')
    assert len(calls) == 2 and len({c.header('Idempotency-Key') for c in calls}) == 1
    assert list(sim.refunds) == [nr_refund.refund_id]


def test_refund_event_without_id_does_not_settle_a_refund_noderails_never_made(paid, sim, admin):
    """Found by the ledger machine: a refund of 5.00 NodeRails never got (503), then 1.00 refunded in the
    NodeRails dashboard, announced without its id. That event used to complete the 5.00 as "the only open
    refund": pretix counted 5.00 refunded that nobody sent, and never asked again. Now the 5.00 stays
    open, is sent again with its own key, and is made."""
    order, payment, intent = paid
    sim.fail_next('refund', status=503)
    refund_via_backend(admin, order, payment, '5.00')
    assert sim.refunds == {}
    sim.dashboard_refund(intent, '1.00', name_refund=False)
    announced = [d for d in sim.deliveries if d.type == 'payment.refunded']
    assert announced and all(d.status == 200 for d in announced), [d.response_body for d in announced]
    assert all(b'refundId' not in d.request_body for d in announced)
    assert _refunds(order) == [('transit', Decimal('5.00'))]
    _ask_again_now(order)
    made = sorted(Decimal(r.amount) for r in sim.refunds.values())
    assert made == [Decimal('1.00'), Decimal('5.00')], made
    ours = next(r for r in sim.refunds.values() if r.amount == '5.00')
    sim.complete_refund(ours.refund_id)
    assert _refunds(order) == [('done', Decimal('5.00'))]


def test_events_of_two_unclear_refunds_of_one_amount_wait_for_their_ids(paid, sim, admin):
    """Found by the ledger machine: two refunds of 1.00, both made by NodeRails but answered 502, then
    their payment.refunded events, naming refund ids pretix has not learnt. They used to be recorded as
    two external refunds, and the reconciliation then completed the two originals too: 4.00 refunded in
    pretix for 2.00 at NodeRails. Now such an event is answered 503 (NodeRails redelivers it) until the
    reconciliation has learnt the ids; then each settles its own refund, once."""
    order, payment, intent = paid
    for _ in range(2):
        sim.accept_but_fail_next('refund', status=502)
        refund_via_backend(admin, order, payment, '1.00')
    assert len(sim.refunds) == 2
    deliveries = []
    for nr_refund in list(sim.refunds.values()):
        deliveries += sim.complete_refund(nr_refund.refund_id)
    assert [d.status for d in deliveries] == [503] * len(deliveries), [d.response_body for d in deliveries]
    assert _refunds(order) == [('transit', Decimal('1.00'))] * 2
    _ask_again_now(order)
    assert _refunds(order) == [('done', Decimal('1.00'))] * 2
    events = {d.event_id: json.loads(d.request_body) for d in deliveries}
    assert len(events) == 2
    for document in events.values():  # NodeRails' redelivery
        [again] = sim.deliver(document['type'], payment.info_data['session_id'], document=document, times=1)
        assert again.status == 200, again.response_body
    assert _refunds(order) == [('done', Decimal('1.00'))] * 2
    with scopes_disabled():
        payment.refresh_from_db()
        assert payment.refunded_amount == Decimal('2.00')


@pytest.mark.parametrize('ours', ['done', 'transit'])
def test_dashboard_refund_is_recorded_once_for_the_part_not_yet_refunded(paid, sim, admin, ours):
    """A refund of the whole payment made in the NodeRails dashboard after pretix refunded 5.00: pretix
    records the 7.50 it did not know about, once, across both event spellings and redeliveries."""
    order, payment, intent = paid
    if ours == 'done':
        sim.configure(refund_status='COMPLETED')
    refund_via_backend(admin, order, payment, '5.00')
    with scopes_disabled():
        assert order.refunds.get().state == ours
    sid = payment.info_data['session_id']
    for event_type in ('payment.refunded', 'payment_intent.refunded'):
        for d in sim.deliver(event_type, sid, refund_id='rf_dashboard', amount='12.50', times=2):
            assert d.status == 200, d.response_body
    with scopes_disabled():
        external = [r.amount for r in order.refunds.filter(state='external')]
    assert external == [Decimal('7.50')], external
    if ours == 'transit':
        [nr_refund] = sim.refunds.values()
        sim.complete_refund(nr_refund.refund_id)
    with scopes_disabled():
        assert sorted(r.state for r in order.refunds.all()) == ['done', 'external']
        assert sum(r.amount for r in order.refunds.all()) == payment.amount


def test_pending_refund_whose_webhook_is_lost_is_asked_about_until_noderails_completes_it(paid, sim, admin):
    """NodeRails answers PENDING and its payment.refunded webhook never arrives. pretix counts a refund in
    transit as refunded, so left alone it would show the customer refunded whatever became of it: the
    reconciliation asks again (the same request and key), tells the organiser after a day, and
    NodeRails' COMPLETED settles it."""
    order, payment, intent = paid
    refund_via_backend(admin, order, payment, '5.00')
    [nr_refund] = sim.refunds.values()
    assert _refunds(order) == [('transit', Decimal('5.00'))]
    _ask_when_due_now(order)   # still PENDING: in transit, asked again later
    assert _refunds(order) == [('transit', Decimal('5.00'))] and len(sim.requests_for('refund')) == 2
    with scopes_disabled():
        order.refunds.update(created=now() - timedelta(days=2))
    _ask_when_due_now(order)
    settlement = plugin('settlement')
    [text] = _log_texts(order, settlement.LOG_REFUND_STALLED)
    assert 'PENDING' in text and 'do not refund this amount again' in text, text
    sim.complete_refund(nr_refund.refund_id, webhook=False)
    _ask_when_due_now(order)
    assert _refunds(order) == [('done', Decimal('5.00'))]
    calls = sim.requests_for('refund')
    assert len(calls) == 4 and len({c.header('Idempotency-Key') for c in calls}) == 1
    assert list(sim.refunds) == [nr_refund.refund_id]
    _ask_when_due_now(order)   # settled: never asked again
    assert len(sim.requests_for('refund')) == 4 and len(_log_texts(order, settlement.LOG_REFUND_STALLED)) == 1


def test_payment_confirmed_by_hand_learns_its_intent_from_the_capture_and_refunds(customer, sim, admin):
    """The organiser marks the waiting crypto payment as paid before NodeRails reports it; the capture
    that follows still records NodeRails' intent, so pretix's refund button refunds through NodeRails."""
    customer.to_confirm()
    sid = customer.state['session_id']
    r, order = customer.place_order()
    with scopes_disabled():
        payment = order.payments.get()
        assert payment.state in ('created', 'pending')
        payment.confirm()
    sim.mark_paid(sid)
    [d] = sim.deliver('payment.captured', sid)
    assert (d.status, d.response_body) == (200, b'Payment already confirmed')
    with scopes_disabled():
        payment.refresh_from_db()
        assert payment.info_data.get('payment_intent_id') == sim.session(sid)['paymentIntentId']
        assert payment.payment_provider.payment_refund_supported(payment)
    refund_via_backend(admin, order, payment, '5.00')
    [call] = sim.requests_for('refund')
    assert call.path == '/payments/intents/%s/refund' % sim.session(sid)['paymentIntentId']


def test_shredding_payment_info_removes_the_wallet_everywhere_and_a_refund_on_its_way_still_settles(paid, sim, admin):
    """pretix's payment-information shredder: the transaction hash (which ties the order to the customer's
    wallet on a public chain) is gone from the payment and from every log entry of the order, pretix's own
    included; what a refund still in transit needs to be matched is kept."""
    from pretix.base.shredder import PaymentInfoShredder
    order, payment, intent = paid
    tx_hash = payment.info_data['tx_hash']
    refund_via_backend(admin, order, payment, '5.00')   # NodeRails answers PENDING: in transit
    [nr_refund] = sim.refunds.values()
    with scopes_disabled():
        assert any(tx_hash in (e.data or '') for e in order.all_logentries())
        PaymentInfoShredder(order.event).shred_data()
        payment.refresh_from_db()
        leaks = [e.action_type for e in order.all_logentries() if tx_hash in (e.data or '')]
    assert 'tx_hash' not in payment.info_data and payment.info_data['payment_intent_id'] == intent
    assert leaks == []
    [d] = sim.complete_refund(nr_refund.refund_id)
    assert (d.status, d.response_body) == (200, b'Refund done')
    assert _refunds(order) == [('done', Decimal('5.00'))]
