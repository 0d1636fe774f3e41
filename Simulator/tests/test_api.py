"""The REST API over real HTTP: auth, validation, idempotency, sessions, refunds."""

import socket
import time
from types import SimpleNamespace

import pytest
from conftest import CREDS, SESSION_BODY, auth, call

from noderails_sim import Simulator


def test_binds_loopback_only(sim):
    for server in sim._servers:
        assert server.server_address[0] == '127.0.0.1'
    assert sim.api_url.startswith('http://127.0.0.1:') and sim.ui_url.startswith('http://127.0.0.1:')
    assert sim.api_url != sim.ui_url  # separate_ui: two origins


@pytest.mark.parametrize('headers', [
    {},
    {'x-app-id': 'app_live'},
    {'x-app-id': 'app_live', 'x-api-key': 'key_test'},
    {'x-app-id': 'nope', 'x-api-key': 'key_live'},
    {'x-app-id': '', 'x-api-key': ''},
])
def test_create_session_rejects_bad_credentials(sim, headers):
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, headers)
    assert r.status == 401
    assert r.json['message']
    assert sim.sessions == {}


def test_create_session_records_request_and_returns_open_session(sim):
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='idem-1'))
    assert r.status == 201
    assert r.json['sessionId'].startswith('cs_') and r.json['status'] == 'OPEN' and r.json['expiresAt'].endswith('Z')
    rec = sim.requests_for('create_session')[-1]
    assert rec.method == 'POST' and rec.path == '/checkout-sessions'
    assert rec.header('X-App-Id') == 'app_live' and rec.header('x-api-key') == 'key_live'
    assert rec.header('idempotency-key') == 'idem-1'
    assert rec.json == SESSION_BODY
    stored = sim.session(r.json['sessionId'])
    assert stored['amount'] == '12.50' and stored['currency'] == 'USD' and stored['reference'] == 'org/event/cart-1'
    assert stored['appId'] == 'app_live' and stored['metadata']['organizer'] == 'org'


def test_test_credentials_are_a_separate_app(sim):
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth('app_test', 'key_test', 'x'))
    assert r.status == 201
    assert sim.session(r.json['sessionId'])['appId'] == 'app_test'


def test_idempotency_key_returns_same_session(sim):
    url = sim.api_url + '/checkout-sessions'
    first = call('POST', url, SESSION_BODY, auth(idem='same'))
    again = call('POST', url, SESSION_BODY, auth(idem='same'))
    other = call('POST', url, SESSION_BODY, auth(idem='other'))
    assert first.status == again.status == 201
    assert first.json == again.json
    assert other.json['sessionId'] != first.json['sessionId']
    assert len(sim.sessions) == 2
    changed = call('POST', url, dict(SESSION_BODY, amount='99.00'), auth(idem='same'))
    assert changed.status == 422
    # keys are per app: the test app may use the same key for its own session
    assert call('POST', url, SESSION_BODY, auth('app_test', 'key_test', 'same')).json['sessionId'] != first.json['sessionId']


def test_without_idempotency_key_each_call_creates(sim):
    url = sim.api_url + '/checkout-sessions'
    a, b = call('POST', url, SESSION_BODY, auth()), call('POST', url, SESSION_BODY, auth())
    assert a.json['sessionId'] != b.json['sessionId']
    sim.configure(require_idempotency_key=True)
    assert call('POST', url, SESSION_BODY, auth()).status == 400


@pytest.mark.parametrize('change', [
    {'amount': 12.5}, {'amount': '-1.00'}, {'amount': 'abc'}, {'amount': '0'},
    {'currency': 'usd'}, {'currency': 'US'}, {'reference': ''}, {'metadata': {'order': 5}},
])
def test_create_session_validates(sim, change):
    r = call('POST', sim.api_url + '/checkout-sessions', dict(SESSION_BODY, **change), auth(idem='v'))
    assert r.status == 400 and r.json['message']


def test_invalid_json_is_400(sim):
    r = call('POST', sim.api_url + '/checkout-sessions', b'{nope', auth())
    assert r.status == 400


def test_public_session_lifecycle(sim, session):
    url = sim.api_url + '/checkout-sessions/public/' + session
    r = call('GET', url)  # no auth needed
    assert r.status == 200
    assert r.json == {'sessionId': session, 'status': 'OPEN', 'amount': '12.50', 'currency': 'USD',
                      'paymentIntentId': None, 'txHash': None, 'chainId': None}
    sim.mark_paid(session)
    r = call('GET', url, headers=auth())
    assert r.json['status'] == 'PAID' and r.json['paymentIntentId'].startswith('pi_')
    assert r.json['txHash'].startswith('0x') and len(r.json['txHash']) == 66 and r.json['chainId'] == 1
    assert call('GET', sim.api_url + '/checkout-sessions/public/cs_unknown').status == 404


def test_mark_paid_can_report_a_different_amount(sim, session):
    sim.mark_paid(session, amount='1.00', currency='EUR')
    r = call('GET', sim.api_url + '/checkout-sessions/public/' + session)
    assert (r.json['amount'], r.json['currency']) == ('1.00', 'EUR')


def test_expire_and_fail(sim, session):
    sim.expire(session)
    assert call('GET', sim.api_url + '/checkout-sessions/public/' + session).json['status'] == 'EXPIRED'
    other = sim.create_session('5.00')['sessionId']
    sim.mark_failed(other)
    assert sim.session(other)['status'] == 'FAILED'


def test_failed_session_is_final_unless_retry_after_failure(sim, session):
    """Fail through the hosted page, then Pay: refused (409) by default; with retry_after_failure
    the session reports FAILED until the retried payment makes it PAID, and the page stays usable."""
    page = sim.ui_url + '/checkout/' + session
    assert call('POST', page + '/fail').json['status'] == 'FAILED'
    assert call('POST', page + '/pay').status == 409
    assert 'data-retry="0"' in call('GET', page).body.decode()

    sim.configure(retry_after_failure=True)
    other = sim.create_session('5.00')['sessionId']
    page = sim.ui_url + '/checkout/' + other
    assert call('POST', page + '/fail').json['status'] == 'FAILED'
    assert call('GET', sim.api_url + '/checkout-sessions/public/' + other).json['status'] == 'FAILED'
    html = call('GET', page).body.decode()
    assert 'data-retry="1"' in html and 'disabled' not in html.split('<div class="nr-actions">')[1].split('</div>')[0]
    paid = call('POST', page + '/pay')
    assert paid.status == 200 and paid.json['status'] == 'PAID'
    assert sim.session(other)['status'] == 'PAID' and sim.session(other)['txHash']


def test_sessions_expire_after_ttl(receiver, monkeypatch):
    """The simulator's clock is moved past the lifetime instead of waiting for it."""
    from noderails_sim import server
    clock = SimpleNamespace(offset=0.0)
    monkeypatch.setattr(server, 'time', SimpleNamespace(
        time=lambda: time.time() + clock.offset, monotonic=time.monotonic, sleep=time.sleep))
    with Simulator(credentials=CREDS, session_ttl_seconds=60) as s:
        sid = call('POST', s.api_url + '/checkout-sessions', SESSION_BODY, auth()).json['sessionId']
        assert call('GET', s.api_url + '/checkout-sessions/public/' + sid).json['status'] == 'OPEN'
        clock.offset = 61
        assert call('GET', s.api_url + '/checkout-sessions/public/' + sid).json['status'] == 'EXPIRED'


def _refund(sim, intent, amount='12.50', idem='r-1', headers=None):
    return call('POST', '%s/payments/intents/%s/refund' % (sim.api_url, intent),
                {'amount': amount, 'reason': 'pretix refund ORDER-R-1'}, headers or auth(idem=idem))


def test_refund_requires_paid_and_credentials(sim, session):
    intent = sim.mark_failed(session)['paymentIntentId']
    assert _refund(sim, intent).status == 409
    paid = sim.create_session('12.50')['sessionId']
    intent = sim.mark_paid(paid)['paymentIntentId']
    assert _refund(sim, intent, headers={'x-app-id': 'app_live', 'x-api-key': 'bad', 'Idempotency-Key': 'z'}).status == 401
    assert _refund(sim, intent, headers=auth('app_test', 'key_test', 'z')).status == 404  # other app's intent
    assert _refund(sim, 'pi_unknown').status == 404
    assert sim.refunds == {}


def test_refund_idempotency_never_refunds_twice(sim, session):
    intent = sim.mark_paid(session)['paymentIntentId']
    first = _refund(sim, intent, '5.00', 'refund-key')
    again = _refund(sim, intent, '5.00', 'refund-key')
    assert first.status == 201 and again.status == 201
    assert first.json == again.json and first.json['status'] == 'PENDING' and first.json['refundId'].startswith('rf_')
    assert len(sim.refunds) == 1
    assert sim.refund(first.json['refundId'])['idempotencyKey'] == 'refund-key'
    # a different key is a second refund, bounded by what is left
    assert _refund(sim, intent, '7.50', 'second').status == 201
    assert _refund(sim, intent, '0.01', 'third').status == 400
    assert len(sim.refunds) == 2
    rec = sim.requests_for('refund')[0]
    assert rec.path == '/payments/intents/%s/refund' % intent and rec.json['amount'] == '5.00'


def test_refund_replay_reports_current_status(sim, session):
    intent = sim.mark_paid(session)['paymentIntentId']
    refund_id = _refund(sim, intent, idem='k').json['refundId']
    sim.complete_refund(refund_id, webhook=False)
    assert _refund(sim, intent, idem='k').json == {'refundId': refund_id, 'status': 'COMPLETED'}


def test_refund_completed_mode(sim, session):
    sim.configure(refund_status='COMPLETED')
    intent = sim.mark_paid(session)['paymentIntentId']
    assert _refund(sim, intent).json['status'] == 'COMPLETED'


def test_unknown_paths_404(sim):
    assert call('GET', sim.api_url + '/nope').status == 404
    assert call('GET', sim.api_url + '/checkout-sessions').status == 404


def test_connection_refused_after_stop(receiver):
    s = Simulator(credentials=CREDS)
    url = s.start()
    s.stop()
    with pytest.raises(OSError):
        call('GET', url + '/checkout-sessions/public/x', timeout=1)
    with pytest.raises(socket.error):
        socket.create_connection(('127.0.0.1', int(url.rsplit(':', 1)[1])), timeout=0.5)
