"""Signed NodeRails webhooks delivered by the simulator into a real pretix."""

import json
from datetime import timedelta

import pytest
from realpretix import IDENTIFIER, LIVE, MODULE, ORG, TEST, WEBHOOK_URL_PATH, plugin, setting_key
from realpretix import rendered as rendered_value
from django.utils.timezone import now
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(customer, sim):
    """An order placed while its NodeRails session was still OPEN: the payment waits for the webhook."""
    return customer.pending_order()


def _reload(order, payment):
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()


def _plugin_log(order):
    with scopes_disabled():
        return list(order.all_logentries().filter(action_type=plugin('settlement').LOG_ACTION))


def _confirmations(order):
    with scopes_disabled():
        return order.all_logentries().filter(action_type='pretix.event.order.payment.confirmed').count()


def _snapshot(order, payment):
    _reload(order, payment)
    with scopes_disabled():
        return (order.status, payment.state, json.dumps(payment.info_data, sort_keys=True),
                order.all_logentries().count())


@pytest.mark.parametrize('event_type', ['payment.captured', 'payment_intent.captured'])
def test_valid_capture_confirms_payment_and_order(pending, sim, event_type):
    order, payment, sid = pending
    [delivery] = sim.deliver(event_type, sid)
    assert delivery.status == 200, delivery.response_body
    _reload(order, payment)
    assert payment.state == 'confirmed' and order.status == 'p'
    assert payment.info_data.get('payment_intent_id') == sim.session(sid)['paymentIntentId']
    assert payment.info_data.get('tx_hash') == sim.session(sid)['txHash']


def test_signature_follows_the_rendered_scheme(pending, sim):
    """Only the signature scheme / timestamp unit the plugin was rendered with is accepted."""
    order, payment, sid = pending
    rendered = (rendered_value('SIGNATURE_PAYLOAD'), rendered_value('TIMESTAMP_UNIT'))
    others = [(s, u) for s in ('timestamp.body', 'body') for u in ('ms', 's') if (s, u) != rendered]
    before = _snapshot(order, payment)
    for scheme, unit in others:
        if scheme == 'body' and rendered[0] == 'body':
            continue  # the unit is not signed under 'body'; only the tolerance check sees it
        [d] = sim.deliver('payment.captured', sid, signature_scheme=scheme, timestamp_unit=unit, apply_state=False)
        assert d.status == 400, (scheme, unit, d.status)
        assert _snapshot(order, payment) == before
    [d] = sim.deliver('payment.captured', sid, signature_scheme=rendered[0], timestamp_unit=rendered[1])
    assert d.status == 200
    _reload(order, payment)
    assert order.status == 'p'


def test_redelivered_three_times_confirms_once_logs_once(pending, sim):
    order, payment, sid = pending
    before = len(_plugin_log(order))
    deliveries = sim.deliver('payment.captured', sid, times=3)
    assert [d.status for d in deliveries] == [200, 200, 200]
    _reload(order, payment)
    assert order.status == 'p'
    assert _confirmations(order) == 1
    assert len(_plugin_log(order)) - before == 1
    with scopes_disabled():
        assert order.all_logentries().filter(action_type='pretix.event.order.paid').count() == 1


def test_capture_and_intent_capture_for_same_payment_confirm_once(pending, sim):
    order, payment, sid = pending
    sim.deliver('payment.captured', sid)
    sim.deliver('payment_intent.captured', sid)
    sim.deliver('checkout_session.completed', sid)
    _reload(order, payment)
    assert order.status == 'p' and _confirmations(order) == 1


ATTACKS = {
    'bad_signature': lambda sim, sid: {'signature': 'f' * 64},
    'wrong_secret': lambda sim, sid: {'secret': 'whsec_not_the_right_one'},
    'stale_timestamp': lambda sim, sid: {'timestamp_offset': -3600},
    'future_timestamp': lambda sim, sid: {'timestamp_offset': 3600},
    'missing_signature': lambda sim, sid: {'omit_headers': ['x-noderails-signature']},
    'missing_timestamp': lambda sim, sid: {'omit_headers': ['x-noderails-timestamp']},
    'malformed_json': lambda sim, sid: {'raw_body': b'{"id": "evt_1", "type": "payment.captured", "data": {'},
    'oversized': lambda sim, sid: {'raw_body': _oversized_event(sim, sid)},
}


def test_rejected_deliveries_change_nothing(pending, sim):
    """Bad signature, stale/future timestamp, missing headers, malformed JSON, oversized body: 4xx, no effect."""
    order, payment, sid = pending
    before = _snapshot(order, payment)
    results = {}
    for name, make in ATTACKS.items():
        [d] = sim.deliver('payment.captured', sid, apply_state=False, **make(sim, sid))
        results[name] = d.status
        assert _snapshot(order, payment) == before, 'state changed after %s' % name
    expected = dict.fromkeys(ATTACKS, 400)
    expected['oversized'] = 413
    assert results == expected
    with scopes_disabled():
        assert not plugin('models').ProcessedWebhookEvent.objects.exists()
    # and the genuine delivery still works afterwards
    assert sim.deliver('payment.captured', sid)[0].status == 200
    _reload(order, payment)
    assert order.status == 'p'


def _oversized_event(sim, sid):
    """A correctly signed, otherwise valid capture padded to 1 MiB."""
    doc = sim.build_event('payment.captured', sid)
    doc['data']['padding'] = 'x' * (1024 * 1024)
    return json.dumps(doc).encode()


def test_webhook_only_accepts_post(shop, configured):
    from django.test import Client
    assert Client().get(WEBHOOK_URL_PATH).status_code == 405


def test_payment_of_another_event_is_ignored(pending, sim, configured):
    from pretix.base.models import Event
    order, payment, sid = pending
    with scopes_disabled():
        other = Event.objects.create(organizer=configured.organizer, name='Other', slug='other', currency='USD',
                                     date_from=now() + timedelta(days=3), live=True)
        other.enable_plugin(MODULE)
        other.save()
        for key, value in configured.event.settings.freeze().items():
            if key.startswith('payment_%s_' % IDENTIFIER):
                other.settings.set(key, value)
    before = _snapshot(order, payment)
    url = 'http://testserver/%s/other/%s/webhook/' % (ORG, WEBHOOK_URL_PATH.split('/')[3])
    [d] = sim.deliver('payment.captured', sid, url=url)
    assert d.status == 200, d.response_body  # authentic, just not this event's: no redelivery wanted
    assert _snapshot(order, payment) == before


def test_unknown_session_and_unhandled_types_are_acknowledged(pending, sim):
    order, payment, sid = pending
    before = _snapshot(order, payment)
    stranger = sim.create_session('12.50', app_id=LIVE.app_id)['sessionId']
    assert sim.deliver('payment.captured', stranger)[0].status == 200
    assert sim.deliver('invoice.paid', sid)[0].status == 200
    assert sim.deliver('subscription.created', sid)[0].status == 200
    assert _snapshot(order, payment) == before


def test_amount_or_currency_mismatch_not_confirmed_but_logged(pending, sim):
    order, payment, sid = pending
    for n, change in enumerate([{'amount': '12.49'}, {'amount': '125.00'}, {'currency': 'EUR'},
                                {'data': {'amount': None}}], start=1):
        [d] = sim.deliver('payment.captured', sid, **change)
        assert d.status == 200, d.response_body  # authentic; redelivery would not help
        _reload(order, payment)
        assert payment.state == 'failed' and order.status == 'n', change   # the money question goes to a human
        problems = [e for e in _plugin_log(order) if 'problem' in (e.parsed_data or {})]
        assert len(problems) >= n, 'mismatch %s not recorded in the order log' % change


def test_test_mode_signature_cannot_confirm_live_order(pending, sim):
    order, payment, sid = pending
    [d] = sim.deliver('payment.captured', sid, secret=TEST.secret)
    # Authentic (the test app's secret verifies), so acknowledged, and ignored for a live order.
    assert d.status == 200 and d.response_body == b'Mode mismatch, ignored', (d.status, d.response_body)
    _reload(order, payment)
    assert order.status == 'n' and payment.state == 'pending'


@pytest.mark.parametrize('event_type', ['checkout_session.expired', 'payment.failed', 'payment_intent.cancelled'])
def test_expiry_and_failures_fail_the_payment(pending, sim, event_type):
    order, payment, sid = pending
    [d] = sim.deliver(event_type, sid)
    assert d.status == 200, d.response_body
    _reload(order, payment)
    assert payment.state == 'failed' and order.status == 'n'


def test_late_capture_after_expiry_still_confirms(pending, sim):
    """Crypto can arrive after the session expired: an authentic capture wins over the earlier failure."""
    order, payment, sid = pending
    sim.deliver('checkout_session.expired', sid)
    sim.deliver('payment.captured', sid, apply_state=False)
    _reload(order, payment)
    assert payment.state == 'confirmed' and order.status == 'p'


def test_failure_after_confirmation_changes_nothing(pending, sim):
    order, payment, sid = pending
    sim.deliver('payment.captured', sid)
    sim.deliver('payment.failed', sid, apply_state=False)
    _reload(order, payment)
    assert payment.state == 'confirmed' and order.status == 'p'


def test_webhook_without_configured_secret_asks_for_retry(pending, sim):
    order, payment, sid = pending
    with scopes_disabled():
        for key in ('webhook_secret', 'webhook_secret_test'):
            order.event.settings.delete(setting_key(key))
    [d] = sim.deliver('payment.captured', sid)
    # Only a 5xx makes NodeRails redeliver; a 4xx would lose the capture.
    assert d.status == 503 and int(d.response_headers['Retry-After']) > 0, (d.status, d.response_headers)
    _reload(order, payment)
    assert order.status == 'n' and payment.state == 'pending'
    with scopes_disabled():
        order.event.settings.set(setting_key('webhook_secret'), LIVE.secret)
    [again] = sim.deliver('payment.captured', sid, document=json.loads(d.request_body))
    assert again.event_id == d.event_id and again.status == 200, again.response_body
    _reload(order, payment)
    assert payment.state == 'confirmed' and order.status == 'p'


@pytest.mark.live_http
def test_webhook_over_real_http(pending, sim, live_server):
    """The same capture, POSTed over a real socket to pretix's live server."""
    from noderails_sim import http_webhook_sender
    order, payment, sid = pending
    sim.webhook_sender = http_webhook_sender(timeout=10)
    [d] = sim.deliver('payment.captured', sid, url=live_server.url + WEBHOOK_URL_PATH)
    assert d.status == 200, (d.status, d.error, d.response_body)
    _reload(order, payment)
    assert order.status == 'p'


def test_webhook_works_while_shop_is_offline(pending, sim):
    order, payment, sid = pending
    with scopes_disabled():
        order.event.live = False
        order.event.save()
    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200, d.response_body
    _reload(order, payment)
    assert order.status == 'p'


def test_test_mode_order_confirmed_by_test_app_webhook(customer, sim):
    with scopes_disabled():
        customer.shop.event.testmode = True
        customer.shop.event.save()
    customer.to_confirm()
    sid = customer.state['session_id']
    r, order = customer.place_order()
    customer.complete(r)
    [d] = sim.deliver('payment.captured', sid)  # the simulator signs test-app sessions with the test secret
    assert d.status == 200, d.response_body
    with scopes_disabled():
        order.refresh_from_db()
        assert order.testmode and order.status == 'p'
    # the live secret must not settle a test order
    other = customer.__class__(customer.shop)
    other.to_confirm()
    sid2 = other.state['session_id']
    r, order2 = other.place_order()
    other.complete(r)
    sim.deliver('payment.captured', sid2, secret=LIVE.secret)
    with scopes_disabled():
        order2.refresh_from_db()
        assert order2.status == 'n'
