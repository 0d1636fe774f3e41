"""What the model-based ledger test (Tests/RealPretix/ledger_machine.py) needs of the simulator:
its own books per payment intent, an outbox of webhooks the test delivers, duplicates, reorders,
delays or drops, a refund carried out but answered 502, and waiting until no request is in flight."""

import json
import socket
import time
import urllib.error

import pytest
from conftest import SESSION_BODY, auth, call
from test_webhooks import verify


def _pay(sim, session, **kwargs):
    return sim.mark_paid(session, **kwargs)['paymentIntentId']


def _refund(sim, intent, amount, key):
    return call('POST', sim.api_url + '/payments/intents/%s/refund' % intent,
                {'amount': amount, 'reason': 'r'}, auth(idem=key))


def test_books_hold_what_was_captured_and_refunded(sim, session):
    assert sim.books() == {}  # an open session captured nothing
    intent = _pay(sim, session)
    assert _refund(sim, intent, '2.50', 'k1').status == 201
    [(key, book)] = sim.books().items()
    assert key == intent
    assert (book['sessionId'], book['captured'], book['currency']) == (session, '12.50', 'USD')
    assert book['refunded'] == '2.50'
    assert [r['amount'] for r in book['refunds']] == ['2.50']
    assert call('GET', sim.api_url + '/_sim/books').json == sim.books()


def test_books_count_what_the_customer_paid_and_refunds_stop_there(sim, session):
    """A customer who paid less than asked: NodeRails captured (and can refund) only that."""
    intent = _pay(sim, session, amount='10.00')
    assert sim.books()[intent]['captured'] == '10.00'
    assert _refund(sim, intent, '12.50', 'k1').status == 400
    assert _refund(sim, intent, '10.00', 'k2').status == 201
    assert sim.books()[intent]['refunded'] == '10.00'


def test_refund_carried_out_but_answered_502(sim, session):
    intent = _pay(sim, session)
    sim.accept_but_fail_next('refund', status=502)
    first = _refund(sim, intent, '12.50', 'same-key')
    assert first.status == 502 and first.json['statusCode'] == 502
    [made] = sim.refunds.values()
    assert made.amount == '12.50' and made.idempotency_key == 'same-key'
    # the client's retry with the same key gets the refund that was made, not a second one
    again = _refund(sim, intent, '12.50', 'same-key')
    assert again.status == 201 and again.json['refundId'] == made.refund_id
    assert len(sim.refunds) == 1 and sim.books()[intent]['refunded'] == '12.50'


def test_outbox_holds_webhooks_until_the_test_sends_them(sim, receiver, session):
    sim.configure(queue_webhooks=True)
    intent = _pay(sim, session)
    sim.mark_paid(session, webhook=True)
    assert receiver.received == []
    [queued] = sim.queued()
    assert queued['type'] == 'payment.captured' and queued['sessionId'] == session
    assert queued['document']['data']['paymentIntentId'] == intent
    # delivered twice: the same event (id and body) each time, then it leaves the outbox
    deliveries = sim.send_queued(queued['eventId'], times=2)
    assert [d.status for d in deliveries] == [200, 200]
    bodies = [body for _, _, body in receiver.received]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert json.loads(bodies[0]) == queued['document']
    assert sim.queued() == []
    with pytest.raises(KeyError):
        sim.send_queued(queued['eventId'])


def test_outbox_keeps_an_event_until_a_delivery_is_answered_2xx(sim, receiver, session):
    """NodeRails retries what was not answered 2xx (a 503 asks for it): the event stays queued."""
    sim.configure(queue_webhooks=True)
    _pay(sim, session)
    queued = sim.enqueue('payment.captured', session)
    receiver.status = 503
    assert [d.status for d in sim.send_queued(queued['eventId'], times=2)] == [503, 503]
    assert [q['eventId'] for q in sim.queued()] == [queued['eventId']]
    receiver.status = 200
    assert [d.status for d in sim.send_queued(queued['eventId'])] == [200]
    assert sim.queued() == []
    # keep=False gives up on it whatever the answer
    again = sim.enqueue('payment.captured', session)
    receiver.status = 503
    sim.send_queued(again['eventId'], keep=False)
    assert sim.queued() == []


def test_outbox_sends_in_any_order_drops_and_signs_wrongly(sim, receiver, session):
    sim.configure(queue_webhooks=True)
    intent = _pay(sim, session)
    older = sim.enqueue('payment.captured', session)
    assert _refund(sim, intent, '12.50', 'k').status == 201
    [refund] = sim.refunds.values()
    assert sim.complete_refund(refund.refund_id) == []  # settled; its webhook waits in the outbox
    newer, = [q for q in sim.queued() if q['type'] == 'payment.refunded']
    assert newer['document']['data']['refundId'] == refund.refund_id
    # the newer one first, then the older one signed with a wrong secret: kept for a retry
    sim.send_queued(newer['eventId'])
    sim.send_queued(older['eventId'], secret='whsec_wrong', keep=True)
    _, headers, body = receiver.received[-1]
    assert not verify('whsec_live', body, headers) and verify('whsec_wrong', body, headers)
    assert [q['eventId'] for q in sim.queued()] == [older['eventId']]
    sim.drop_queued(older['eventId'])
    assert sim.queued() == [] and len(receiver.received) == 2
    assert [json.loads(b)['type'] for _, _, b in receiver.received] == ['payment.refunded', 'payment.captured']


def test_outbox_over_the_control_api(sim, receiver, session):
    base = sim.api_url + '/_sim'
    assert call('POST', base + '/config', {'queueWebhooks': True}).json['queue_webhooks'] is True
    created = call('POST', base + '/outbox', {'type': 'payment.captured', 'sessionId': session})
    assert created.status == 201
    event_id = created.json['eventId']
    assert [q['eventId'] for q in call('GET', base + '/outbox').json] == [event_id]
    sent = call('POST', base + '/outbox/%s/send' % event_id, {'times': 2})
    assert [d['status'] for d in sent.json] == [200, 200] and len(receiver.received) == 2
    assert call('POST', base + '/outbox/%s/send' % event_id, {}).status == 404
    other = call('POST', base + '/outbox', {'type': 'payment.failed', 'sessionId': session}).json['eventId']
    assert call('DELETE', base + '/outbox/' + other).status == 200
    assert call('GET', base + '/outbox').json == [] and len(receiver.received) == 2
    fault = call('POST', base + '/faults', {'route': 'refund', 'answerStatus': 502})
    assert fault.status == 201 and fault.json['answer_status'] == 502


def test_reset_empties_the_outbox(sim, session):
    sim.enqueue('payment.captured', session)
    sim.reset()
    assert sim.queued() == []


def test_wait_idle_outlasts_a_request_its_client_gave_up_on(sim, session):
    intent = _pay(sim, session)
    sim.delay_next('refund', 0.6)
    started = time.monotonic()
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        call('POST', sim.api_url + '/payments/intents/%s/refund' % intent, {'amount': '1.00'}, auth(idem='t'),
             timeout=0.1)
    assert sim.refunds == {}  # still sleeping
    assert sim.wait_idle(timeout=10)
    assert time.monotonic() - started >= 0.6
    [made] = sim.refunds.values()  # carried out after the client gave up
    assert made.amount == '1.00'
    assert sim.wait_idle(timeout=0)
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='z'))
    assert r.status == 201 and sim.wait_idle(timeout=5)


def test_dashboard_refund_is_booked_and_announced(sim, receiver, session):
    sim.configure(queue_webhooks=True)
    intent = _pay(sim, session)
    made = sim.dashboard_refund(intent, '2.00', name_refund=False)
    assert made['status'] == 'COMPLETED' and sim.books()[intent]['refunded'] == '2.00'
    [queued] = sim.queued()
    data = queued['document']['data']
    assert queued['type'] == 'payment.refunded' and data['amount'] == '2.00' and 'refundId' not in data
    sim.configure(queue_webhooks=False)
    named = sim.dashboard_refund(intent, '3.00')
    assert json.loads(receiver.received[-1][2])['data']['refundId'] == named['refundId']
    with pytest.raises(Exception, match='exceeds'):
        sim.dashboard_refund(intent, '8.00')
