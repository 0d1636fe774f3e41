"""Signed webhook deliveries, verified here with an independent HMAC implementation."""

import hashlib
import hmac
import json
import time

import pytest
from conftest import CREDS, SESSION_BODY, auth, call

from noderails_sim import Simulator


def verify(secret, body, headers, scheme='timestamp.body'):
    ts = headers['x-noderails-timestamp']
    payload = (ts + '.').encode() + body if scheme == 'timestamp.body' else body
    return hmac.compare_digest(hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest(),
                               headers['x-noderails-signature'])


def test_captured_event_shape_and_signature(sim, receiver, session):
    deliveries = sim.deliver('payment.captured', session)
    assert len(deliveries) == 1 and deliveries[0].ok
    path, headers, body = receiver.received[0]
    assert path == '/org/event/noderails/webhook/'
    assert headers['content-type'] == 'application/json'
    assert verify('whsec_live', body, headers)
    ts = int(headers['x-noderails-timestamp'])
    assert abs(ts / 1000 - time.time()) < 5  # ms by default
    doc = json.loads(body)
    assert doc['id'].startswith('evt_') and doc['type'] == 'payment.captured' and doc['createdAt'].endswith('Z')
    s = sim.session(session)
    assert s['status'] == 'PAID'  # a capture implies the session is paid
    assert doc['data'] == {'id': s['paymentIntentId'], 'paymentIntentId': s['paymentIntentId'],
                           'checkoutSessionId': session, 'status': 'CAPTURED', 'amount': '12.50',
                           'currency': 'USD', 'chainId': 1, 'txHash': s['txHash']}


@pytest.mark.parametrize('scheme, unit', [('timestamp.body', 'ms'), ('timestamp.body', 's'),
                                          ('body', 'ms'), ('body', 's')])
def test_signature_schemes_and_units(receiver, scheme, unit):
    with Simulator(credentials=CREDS, webhook_url=receiver.url, webhook_secret='whsec_x',
                   signature_scheme=scheme, timestamp_unit=unit) as s:
        sid = s.create_session('3.00')['sessionId']
        s.deliver('payment_intent.captured', sid)
    _, headers, body = receiver.received[0]
    assert verify('whsec_x', body, headers, scheme)
    if scheme == 'body':
        assert not verify('whsec_x', body, headers, 'timestamp.body')
    ts = int(headers['x-noderails-timestamp'])
    assert abs((ts / 1000 if unit == 'ms' else ts) - time.time()) < 5


def test_duplicates_resend_the_same_event(sim, receiver, session):
    sim.configure(webhook_duplicates=3)
    deliveries = sim.deliver('payment.captured', session)
    assert [d.attempt for d in deliveries] == [1, 2, 3]
    bodies = {body for _, _, body in receiver.received}
    assert len(receiver.received) == 3 and len(bodies) == 1
    assert len({json.loads(b)['id'] for b in bodies}) == 1
    assert sim.deliver('payment.captured', session, times=2)[-1].attempt == 2


def test_test_app_sessions_use_their_own_secret(sim, receiver):
    sid = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth('app_test', 'key_test')).json['sessionId']
    sim.deliver('payment.captured', sid)
    _, headers, body = receiver.received[0]
    assert verify('whsec_test', body, headers) and not verify('whsec_live', body, headers)


def test_negative_overrides(sim, receiver, session):
    sim.deliver('payment.captured', session, timestamp_offset=-600)
    _, h, b = receiver.received[-1]
    assert verify('whsec_live', b, h) and int(h['x-noderails-timestamp']) / 1000 < time.time() - 590
    sim.deliver('payment.captured', session, secret='wrong')
    _, h, b = receiver.received[-1]
    assert not verify('whsec_live', b, h)
    sim.deliver('payment.captured', session, signature='0' * 64)
    assert receiver.received[-1][1]['x-noderails-signature'] == '0' * 64
    sim.deliver('payment.captured', session, raw_body=b'{not json')
    _, h, b = receiver.received[-1]
    assert b == b'{not json' and verify('whsec_live', b, h)
    sim.deliver('payment.captured', session, omit_headers=['x-noderails-signature'])
    assert 'x-noderails-signature' not in receiver.received[-1][1]
    sim.deliver('payment.captured', session, amount='1.00', currency='EUR')
    data = json.loads(receiver.received[-1][2])['data']
    assert (data['amount'], data['currency']) == ('1.00', 'EUR')
    sim.deliver('payment.captured', session, timestamp='123')
    assert receiver.received[-1][1]['x-noderails-timestamp'] == '123'


def test_event_types_move_session_state(sim, receiver):
    a = sim.create_session('1.00')['sessionId']
    sim.deliver('checkout_session.expired', a)
    doc = json.loads(receiver.received[-1][2])
    assert sim.session(a)['status'] == 'EXPIRED'
    assert doc['data']['id'] == a and doc['data']['checkoutSessionId'] == a and doc['data']['status'] == 'EXPIRED'
    b = sim.create_session('1.00')['sessionId']
    sim.deliver('payment.failed', b)
    assert sim.session(b)['status'] == 'FAILED'
    c = sim.create_session('1.00')['sessionId']
    sim.deliver('payment.captured', c, apply_state=False)
    assert sim.session(c)['status'] == 'OPEN'


def test_refund_webhook_carries_refund_id(sim, receiver, session):
    intent = sim.mark_paid(session)['paymentIntentId']
    r = call('POST', '%s/payments/intents/%s/refund' % (sim.api_url, intent), {'amount': '2.00', 'reason': 'x'},
             auth(idem='r'))
    refund_id = r.json['refundId']
    sim.complete_refund(refund_id)
    data = json.loads(receiver.received[-1][2])['data']
    assert json.loads(receiver.received[-1][2])['type'] == 'payment.refunded'
    assert data['refundId'] == refund_id and data['paymentIntentId'] == intent and data['amount'] == '2.00'
    assert data['status'] == 'REFUNDED' and data['checkoutSessionId'] == session
    assert sim.refund(refund_id)['status'] == 'COMPLETED'


def test_delivery_records_receiver_errors(sim, receiver, session):
    receiver.status = 503
    d = sim.deliver('payment.captured', session)[0]
    assert d.status == 503 and not d.ok
    assert d.response_headers.get('Retry-After') == '10', d.response_headers
    d = sim.deliver('payment.captured', session, url='http://127.0.0.1:9/x')[0]
    assert d.status is None and d.error
    assert len(sim.deliveries) == 2


def test_custom_sender(receiver):
    seen = []

    def sender(url, headers, body):
        seen.append((url, headers, body))
        return 202, b'accepted'
    with Simulator(credentials=CREDS, webhook_url='http://pretix.invalid/hook/', webhook_secret='s',
                   webhook_sender=sender) as s:
        sid = s.create_session('1.00')['sessionId']
        d = s.deliver('payment.captured', sid)[0]
    assert d.status == 202 and seen[0][0] == 'http://pretix.invalid/hook/'
    assert d.response_headers == {}  # a two-tuple transport reports no headers


def test_auto_webhooks_on_checkout_buttons_and_refund_settlement(receiver):
    with Simulator(credentials=CREDS, webhook_url=receiver.url, webhook_secret='whsec_live',
                   auto_webhooks=True, refund_settle_seconds=0.1) as s:
        sid = s.create_session('4.00')['sessionId']
        assert call('POST', s.ui_url + '/checkout/%s/pay' % sid).status == 200
        intent = s.session(sid)['paymentIntentId']
        call('POST', '%s/payments/intents/%s/refund' % (s.api_url, intent), {'amount': '4.00', 'reason': ''},
             auth(idem='r'))
        deadline = time.time() + 5
        while len(receiver.received) < 2 and time.time() < deadline:
            time.sleep(0.05)
    types = [json.loads(b)['type'] for _, _, b in receiver.received]
    assert types == ['payment.captured', 'payment.refunded']
