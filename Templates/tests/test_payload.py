"""Webhook payload extractors (events.py): event type, ids, amount and currency.

The body has passed the signature check when these run, but its shape is still not
trusted: every odd input must either parse to None fields or raise PayloadError.
"""

import json
from decimal import Decimal

import pytest

from <% package.module %> import conf, events

# [webhook] confirm_on: the customer's approval confirms, or is only logged until the capture.
APPROVAL = events.ACTION_CONFIRM if 'authorized' in conf.CONFIRM_ON else events.ACTION_APPROVAL

CONTRACT_EXAMPLE = {
    'id': 'evt_1', 'type': 'payment.captured', 'createdAt': '2025-01-15T10:30:00.000Z',
    'data': {
        'id': 'pi_1', 'paymentIntentId': 'pi_1', 'checkoutSessionId': 'cs_1', 'status': 'CAPTURED',
        'amount': '12.50', 'currency': 'USD', 'chainId': 1, 'txHash': '0xabc',
    },
}


def body(document):
    return json.dumps(document).encode('utf-8')


def event_with(data, event_type='payment.captured', event_id='evt_1'):
    return events.parse_event(body({'id': event_id, 'type': event_type, 'data': data}))


def test_contract_example():
    event = events.parse_event(body(CONTRACT_EXAMPLE))
    assert event == events.WebhookEvent(
        event_id='evt_1', type='payment.captured', payment_intent_id='pi_1', checkout_session_id='cs_1',
        refund_id=None, status='CAPTURED', amount=Decimal('12.50'), currency='USD', chain_id=1, tx_hash='0xabc',
    )
    assert event.action == events.ACTION_CONFIRM
    assert event.references == ('pi_1', 'cs_1')


@pytest.mark.parametrize('event_type, action', [
    ('payment.authorized', APPROVAL),
    ('payment.captured', events.ACTION_CONFIRM),
    ('payment_intent.authorized', APPROVAL),
    ('payment_intent.captured', events.ACTION_CONFIRM),
    ('checkout_session.completed', APPROVAL),
    ('payment.refunded', events.ACTION_REFUND),
    ('payment_intent.refunded', events.ACTION_REFUND),
    ('payment.failed', events.ACTION_FAIL),
    ('payment_intent.failed', events.ACTION_FAIL),
    ('payment_intent.cancelled', events.ACTION_FAIL),
    ('checkout_session.expired', events.ACTION_FAIL),
    ('payment_intent.created', events.ACTION_IGNORE),
    ('payment_intent.settled', events.ACTION_IGNORE),
    ('invoice.paid', events.ACTION_IGNORE),
    ('subscription.created', events.ACTION_IGNORE),
    ('PAYMENT.CAPTURED', events.ACTION_IGNORE),
    ('', events.ACTION_IGNORE),
])
def test_action_for(event_type, action):
    assert events.action_for(event_type) == action


def test_handled_event_types_are_the_contract_list():
    assert events.HANDLED_EVENT_TYPES == {
        'payment.authorized', 'payment.captured', 'payment.refunded', 'payment.failed',
        'payment_intent.authorized', 'payment_intent.captured', 'payment_intent.refunded',
        'payment_intent.failed', 'payment_intent.cancelled',
        'checkout_session.completed', 'checkout_session.expired',
    }


def test_payment_intent_event_with_only_data_id():
    event = event_with({'id': 'pi_9', 'status': 'CAPTURED'}, 'payment_intent.captured')
    assert event.payment_intent_id == 'pi_9'
    assert event.checkout_session_id is None
    assert event.references == ('pi_9',)


def test_checkout_session_event_uses_data_id_as_session():
    event = event_with({'id': 'cs_9', 'status': 'EXPIRED'}, 'checkout_session.expired')
    assert event.checkout_session_id == 'cs_9'
    assert event.payment_intent_id is None
    assert event.action == events.ACTION_FAIL


def test_checkout_session_completed_with_intent():
    event = event_with({'id': 'cs_9', 'paymentIntentId': 'pi_9'}, 'checkout_session.completed')
    assert event.references == ('pi_9', 'cs_9')


def test_explicit_ids_win_over_data_id():
    event = event_with({'id': 'x_1', 'paymentIntentId': 'pi_2', 'checkoutSessionId': 'cs_2'})
    assert (event.payment_intent_id, event.checkout_session_id) == ('pi_2', 'cs_2')


def test_refund_event():
    event = event_with({'paymentIntentId': 'pi_1', 'checkoutSessionId': 'cs_1', 'refundId': 'rf_1',
                        'amount': '5.00', 'currency': 'usd', 'status': 'completed'}, 'payment.refunded')
    assert event.action == events.ACTION_REFUND
    assert (event.refund_id, event.amount, event.currency, event.status) == ('rf_1', Decimal('5.00'), 'USD', 'COMPLETED')


@pytest.mark.parametrize('raw, expected', [
    ('12.50', Decimal('12.50')),
    (12.5, Decimal('12.5')),
    (0.1, Decimal('0.1')),
    (1e2, Decimal('100.0')),
    (12, Decimal('12')),
    (' 3.00 ', Decimal('3.00')),
    ('abc', None), ('NaN', None), ('Infinity', None), ('', None),
    (True, None), (None, None), ([], None), ({}, None),
])
def test_amount(raw, expected):
    assert event_with({'id': 'pi_1', 'amount': raw}).amount == expected


def test_json_number_amount_never_goes_through_float():
    raw = b'{"id":"evt_1","type":"payment.captured","data":{"id":"pi_1","amount":0.30000000000000004}}'
    assert events.parse_event(raw).amount == Decimal('0.30000000000000004')


@pytest.mark.parametrize('raw, expected', [
    ('usd', 'USD'), (' eur ', 'EUR'), ('', None), (None, None), (840, None),
])
def test_currency(raw, expected):
    assert event_with({'id': 'pi_1', 'currency': raw}).currency == expected


@pytest.mark.parametrize('raw, expected', [
    (1, 1), (137, 137), (1.0, 1), (1.5, None), (True, None), ('1', None), (None, None),
])
def test_chain_id(raw, expected):
    assert event_with({'id': 'pi_1', 'chainId': raw}).chain_id == expected


@pytest.mark.parametrize('raw', [None, '', '   ', 42, ['pi_1'], {'id': 'pi_1'}, 'pi_\n1', 'pi_\x001', 'p' * 191])
def test_unusable_ids_are_none(raw):
    event = event_with({'id': raw, 'paymentIntentId': raw, 'checkoutSessionId': raw, 'refundId': raw, 'txHash': raw})
    assert (event.payment_intent_id, event.checkout_session_id, event.refund_id, event.tx_hash) == (None,) * 4
    assert event.references == ()


def test_ids_are_stripped_and_may_be_long_up_to_the_limit():
    event = event_with({'paymentIntentId': '  pi_1  ', 'checkoutSessionId': 'c' * events.MAX_ID_LENGTH})
    assert event.payment_intent_id == 'pi_1'
    assert event.checkout_session_id == 'c' * events.MAX_ID_LENGTH


def test_missing_data_gives_empty_fields():
    event = events.parse_event(body({'id': 'evt_1', 'type': 'payment.captured'}))
    assert event.references == ()
    assert event.amount is None and event.currency is None and event.status is None


def test_unknown_type_still_parses():
    event = events.parse_event(body({'id': 'evt_1', 'type': 'invoice.paid', 'data': {'id': 'in_1'}}))
    assert event.action == events.ACTION_IGNORE
    assert event.references == ()


@pytest.mark.parametrize('raw', [
    b'', b'not json', b'[]', b'"evt"', b'null', b'\xff\xfe{}',
    b'{"type": "payment.captured", "data": {}}',
    b'{"id": "", "type": "payment.captured"}',
    b'{"id": 7, "type": "payment.captured"}',
    b'{"id": "evt_1"}',
    b'{"id": "evt_1", "type": 5}',
    b'{"id": "evt_1", "type": ""}',
    b'{"id": "evt_1", "type": "payment.captured", "data": []}',
    b'{"id": "evt_1", "type": "payment.captured", "data": "pi_1"}',
])
def test_malformed_bodies_raise(raw):
    with pytest.raises(events.PayloadError):
        events.parse_event(raw)


def test_payload_error_is_a_value_error():
    assert issubclass(events.PayloadError, ValueError)


@pytest.mark.parametrize('wrap', [bytes, bytearray, memoryview])
def test_accepts_any_bytes_like_body(wrap):
    assert events.parse_event(wrap(body(CONTRACT_EXAMPLE))).event_id == 'evt_1'


def test_utf8_bom_is_rejected_like_any_non_json():
    with pytest.raises(events.PayloadError):
        events.parse_event(b'\xef\xbb\xbf' + body(CONTRACT_EXAMPLE))
