"""HTTP shaping of the NodeRails client against a real HTTP server on 127.0.0.1.

No mocking library: a stdlib ThreadingHTTPServer records every request and answers
with whatever the test scripted, so headers, bodies and timeouts are the real thing.
"""

import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from <% package.module %> import client as nr

APP_ID = 'app_123e4567-e89b-12d3-a456-426614174000'
API_KEY = 'nr_test_sk_secret'


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode('utf-8'))


class FakeNodeRails(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), Handler)
        self.requests = []
        self.replies = []

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]

    def reply(self, status=200, body=None, *, raw=None, delay=0.0, headers=None, drip=0.0, drop=False):
        """Script the next answer. drip: send the whole response one byte per ``drip`` seconds;
        drop: read the request, then close the connection without answering."""
        payload = raw if raw is not None else json.dumps(body if body is not None else {}).encode('utf-8')
        self.replies.append((status, payload, delay, headers or {}, drip, drop))


class Handler(BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        self.server.requests.append(Recorded(self.command, self.path, self.headers, body))
        reply = self.server.replies.pop(0) if self.server.replies else (200, b'{}', 0, {}, 0.0, False)
        status, payload, delay, headers, drip, drop = reply
        if delay:
            time.sleep(delay)
        if drop:
            self.close_connection = True
            return
        try:
            if drip:
                self._drip(status, payload, drip)
                return
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def _drip(self, status, payload, interval):
        head = 'HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % (status, len(payload))
        for byte in head.encode('ascii') + payload:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(interval)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = FakeNodeRails()
    thread = threading.Thread(target=srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def api(server):
    return nr.NodeRailsClient(APP_ID, API_KEY, base_url=server.url, timeout=2)


def assert_auth_headers(request):
    assert request.headers['x-app-id'] == APP_ID
    assert request.headers['x-api-key'] == API_KEY
    assert request.headers['Accept'] == 'application/json'
    assert request.headers['User-Agent'] == nr.USER_AGENT


SESSION_REPLY = {'sessionId': 'cs_abc', 'status': 'OPEN', 'expiresAt': '2030-01-01T00:00:00.000Z'}
PUBLIC_REPLY = {
    'sessionId': 'cs_abc', 'status': 'PAID', 'amount': '12.50', 'currency': 'USD',
    'paymentIntentId': 'pi_1', 'txHash': '0xdeadbeef', 'chainId': 137,
}


# -- create_checkout_session ------------------------------------------------------------------


def create(api, **overrides):
    kwargs = dict(
        amount=Decimal('12.5'), currency='USD', reference='org/event/cart-1',
        metadata={'organizer': 'org', 'event': 'event', 'order': '', 'payment': ''},
        idempotency_key='key-1',
    )
    kwargs.update(overrides)
    return api.create_checkout_session(**kwargs)


def test_create_checkout_session_request_shape(server, api):
    server.reply(201, SESSION_REPLY)
    session = create(api)
    (request,) = server.requests
    assert request.method == 'POST'
    assert request.path == '/checkout-sessions'
    assert_auth_headers(request)
    assert request.headers['Idempotency-Key'] == 'key-1'
    assert request.headers['Content-Type'] == 'application/json'
    assert request.json() == {
        'amount': '12.50', 'currency': 'USD', 'reference': 'org/event/cart-1',
        'metadata': {'organizer': 'org', 'event': 'event', 'order': '', 'payment': ''},
    }
    assert session == nr.CheckoutSession('cs_abc', 'OPEN', '2030-01-01T00:00:00.000Z')


@pytest.mark.parametrize('amount, places, expected', [
    (Decimal('12.5'), 2, '12.50'),
    (Decimal('12.345'), 2, '12.35'),
    (Decimal('1000'), 0, '1000'),
    (Decimal('0.5'), 0, '1'),
    (Decimal('1.2345'), 3, '1.235'),
])
def test_create_checkout_session_formats_amount_with_currency_places(server, api, amount, places, expected):
    server.reply(201, SESSION_REPLY)
    create(api, amount=amount, currency_places=places)
    assert server.requests[0].json()['amount'] == expected


def test_create_checkout_session_keeps_unicode_metadata(server, api):
    server.reply(201, SESSION_REPLY)
    create(api, metadata={'organizer': 'über', 'event': 'ev\u202e', 'order': 'A1B2C', 'payment': '7'})
    assert server.requests[0].json()['metadata'] == {'organizer': 'über', 'event': 'ev\u202e', 'order': 'A1B2C', 'payment': '7'}


def test_base_url_path_prefix_and_trailing_slash(server):
    api = nr.NodeRailsClient(APP_ID, API_KEY, base_url=server.url + '/v1/', timeout=2)
    server.reply(201, SESSION_REPLY)
    create(api)
    assert server.requests[0].path == '/v1/checkout-sessions'


def test_create_checkout_session_without_session_id_is_bad_response(server, api):
    server.reply(201, {'status': 'OPEN'})
    with pytest.raises(nr.NodeRailsBadResponse):
        create(api)


# -- get_public_session -----------------------------------------------------------------------


def test_get_public_session_request_shape(server, api):
    server.reply(200, PUBLIC_REPLY)
    session = api.get_public_session('cs_abc')
    (request,) = server.requests
    assert request.method == 'GET'
    assert request.path == '/checkout-sessions/public/cs_abc'
    assert_auth_headers(request)
    assert 'Idempotency-Key' not in request.headers
    assert request.body == b''
    assert session == nr.PublicSession(
        session_id='cs_abc', status='PAID', amount=Decimal('12.50'), currency='USD',
        payment_intent_id='pi_1', tx_hash='0xdeadbeef', chain_id=137,
    )
    assert session.is_paid and not session.has_failed


def test_get_public_session_quotes_the_id_into_one_segment(server, api):
    server.reply(200, {'status': 'OPEN'})
    api.get_public_session('cs/../../admin?x=1#y')
    assert server.requests[0].path == '/checkout-sessions/public/cs%2F..%2F..%2Fadmin%3Fx%3D1%23y'


def test_get_public_session_numeric_amount_is_exact_decimal(server, api):
    server.reply(200, dict(PUBLIC_REPLY, amount=0.1, currency='usd'))
    session = api.get_public_session('cs_abc')
    assert session.amount == Decimal('0.1')
    assert session.currency == 'USD'


@pytest.mark.parametrize('status, paid, failed', [
    ('OPEN', False, False), ('paid', True, False), ('EXPIRED', False, True), ('FAILED', False, True),
])
def test_get_public_session_status_flags(server, api, status, paid, failed):
    server.reply(200, {'sessionId': 'cs_abc', 'status': status})
    session = api.get_public_session('cs_abc')
    assert (session.is_paid, session.has_failed) == (paid, failed)
    assert session.amount is None and session.payment_intent_id is None and session.chain_id is None


@pytest.mark.parametrize('field, value', [
    ('amount', 'NaN'), ('amount', 'Infinity'), ('amount', True), ('amount', [1]), ('chainId', True), ('chainId', '1'),
])
def test_get_public_session_rejects_odd_field_types(server, api, field, value):
    server.reply(200, dict(PUBLIC_REPLY, **{field: value}))
    session = api.get_public_session('cs_abc')
    assert getattr(session, {'amount': 'amount', 'chainId': 'chain_id'}[field]) is None


def test_get_public_session_for_another_session_is_bad_response(server, api):
    server.reply(200, dict(PUBLIC_REPLY, sessionId='cs_other'))
    with pytest.raises(nr.NodeRailsBadResponse):
        api.get_public_session('cs_abc')


def test_get_public_session_without_status_is_bad_response(server, api):
    server.reply(200, {'sessionId': 'cs_abc'})
    with pytest.raises(nr.NodeRailsBadResponse):
        api.get_public_session('cs_abc')


def test_empty_id_is_refused_before_any_request(server, api):
    with pytest.raises(ValueError):
        api.get_public_session('')
    assert server.requests == []


# -- refund_payment_intent --------------------------------------------------------------------


def test_refund_request_shape(server, api):
    server.reply(201, {'refundId': 'rf_1', 'status': 'PENDING'})
    refund = api.refund_payment_intent('pi_1', amount=Decimal('5'), reason='pretix refund ABC12-R-1',
                                       idempotency_key='mod:refund:pi_1:ABC12-R-1')
    (request,) = server.requests
    assert request.method == 'POST'
    assert request.path == '/payments/intents/pi_1/refund'
    assert_auth_headers(request)
    assert request.headers['Idempotency-Key'] == 'mod:refund:pi_1:ABC12-R-1'
    assert request.headers['Content-Type'] == 'application/json'
    assert request.json() == {'amount': '5.00', 'reason': 'pretix refund ABC12-R-1'}
    assert refund == nr.Refund('rf_1', 'PENDING')


def test_refund_completed_status_is_normalised(server, api):
    server.reply(200, {'refundId': 'rf_1', 'status': 'completed'})
    refund = api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='k')
    assert refund.status == 'COMPLETED'


@pytest.mark.parametrize('word', ['REJECTED', 'failed', 'Canceled', 'CANCELLED'])
def test_refund_refused_in_a_2xx_is_a_rejection(server, api, word):
    # Counted as money on its way, pretix would show the customer refunded.
    server.reply(200, {'refundId': 'rf_1', 'status': word})
    with pytest.raises(nr.NodeRailsRequestRejected) as info:
        api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='k')
    assert word.upper() in info.value.message


def test_refund_retry_sends_the_same_idempotency_key(server, api):
    server.reply(503, {'message': 'try later'})
    server.reply(200, {'refundId': 'rf_1', 'status': 'PENDING'})
    with pytest.raises(nr.NodeRailsUnavailable):
        api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='stable')
    api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='stable')
    assert [r.headers['Idempotency-Key'] for r in server.requests] == ['stable', 'stable']


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize('status', [400, 401, 403, 404, 409, 422])
def test_4xx_is_request_rejected_with_message(server, api, status):
    server.reply(status, {'message': 'Amount must be positive'})
    with pytest.raises(nr.NodeRailsRequestRejected) as info:
        create(api)
    assert info.value.status == status
    assert info.value.message == 'Amount must be positive'
    assert isinstance(info.value, nr.NodeRailsError)


def test_4xx_with_message_list_and_without_json(server, api):
    server.reply(400, {'message': ['amount is required', 'currency is invalid']})
    with pytest.raises(nr.NodeRailsRequestRejected) as info:
        create(api)
    assert info.value.message == 'amount is required; currency is invalid'
    server.reply(404, raw=b'<html>not found</html>')
    with pytest.raises(nr.NodeRailsRequestRejected) as info:
        api.get_public_session('cs_x')
    assert info.value.message == 'NodeRails answered with HTTP 404.'


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_5xx_is_unavailable(server, api, status):
    server.reply(status, {'message': 'upstream down'})
    with pytest.raises(nr.NodeRailsUnavailable) as info:
        api.get_public_session('cs_abc')
    assert info.value.status == status


def test_timeout_is_unavailable_and_bounded(server):
    # An answer 30 s late against a 1 s timeout: wide margins either side on a loaded machine.
    api = nr.NodeRailsClient(APP_ID, API_KEY, base_url=server.url, timeout=1.0)
    server.reply(200, PUBLIC_REPLY, delay=30.0)
    started = time.monotonic()
    with pytest.raises(nr.NodeRailsUnavailable):
        api.get_public_session('cs_abc')
    assert time.monotonic() - started < 15


def test_timeout_covers_the_whole_call_not_each_read(server):
    """An upstream that answers one byte at a time never lets a single read time out; the
    deadline of the call cuts it off all the same."""
    api = nr.NodeRailsClient(APP_ID, API_KEY, base_url=server.url, timeout=1.0)
    server.reply(200, PUBLIC_REPLY, drip=0.1)  # about 30 s for the whole answer
    started = time.monotonic()
    with pytest.raises(nr.NodeRailsTimeout):
        api.get_public_session('cs_abc')
    assert time.monotonic() - started < 5


def test_connection_refused_is_not_sent():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port any more
    api = nr.NodeRailsClient(APP_ID, API_KEY, base_url='http://127.0.0.1:%d' % port, timeout=1)
    with pytest.raises(nr.NodeRailsNotSent):
        api.get_public_session('cs_abc')


def test_connection_dropped_after_sending_may_have_been_carried_out(server, api):
    """NodeRails got the request and the connection broke before its answer: unavailable, but not
    NodeRailsNotSent, so callers treat the outcome as unknown."""
    server.reply(drop=True)
    with pytest.raises(nr.NodeRailsUnavailable) as info:
        api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='k')
    assert not isinstance(info.value, (nr.NodeRailsNotSent, nr.NodeRailsTimeout))
    assert len(server.requests) == 1


@pytest.mark.parametrize('raw', [b'not json', b'[1, 2]', b'"string"', b'\xff\xfe', b''])
def test_2xx_without_a_json_object_is_bad_response(server, api, raw):
    server.reply(200, raw=raw)
    with pytest.raises(nr.NodeRailsBadResponse):
        api.get_public_session('cs_abc')


def test_redirects_are_not_followed(server, api):
    server.reply(302, raw=b'', headers={'Location': server.url + '/elsewhere'})
    with pytest.raises(nr.NodeRailsBadResponse):
        api.get_public_session('cs_abc')
    assert len(server.requests) == 1


def test_oversized_response_is_bad_response(server, api):
    server.reply(200, raw=b'{"status": "' + b'x' * (nr.MAX_RESPONSE_BYTES + 10) + b'"}')
    with pytest.raises(nr.NodeRailsBadResponse):
        api.get_public_session('cs_abc')


class RecordingSession(requests.Session):
    """A real requests.Session that also remembers the keyword arguments of each call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append(kwargs)
        return super().request(method, url, **kwargs)


def test_every_call_carries_the_configured_timeout(server):
    http = RecordingSession()
    api = nr.NodeRailsClient(APP_ID, API_KEY, base_url=server.url, session=http)
    server.reply(201, SESSION_REPLY)
    server.reply(200, PUBLIC_REPLY)
    server.reply(200, {'refundId': 'rf_1', 'status': 'PENDING'})
    create(api)
    api.get_public_session('cs_abc')
    api.refund_payment_intent('pi_1', amount=Decimal('1'), reason='r', idempotency_key='k')
    assert [c['timeout'] for c in http.calls] == [nr.HTTP_TIMEOUT_SECONDS] * 3
    assert all(c['allow_redirects'] is False for c in http.calls)


def test_rendered_defaults():
    # The values of the forge config this plugin was generated from.
    assert nr.API_BASE_URL == '<% noderails.api_base_url %>' and not nr.API_BASE_URL.endswith('/')
    assert nr.HTTP_TIMEOUT_SECONDS == <% noderails.http_timeout_seconds %>
    assert nr.USER_AGENT == '<% package.name %>/<% package.version %>'
    assert nr.NodeRailsClient(APP_ID, API_KEY).timeout == nr.HTTP_TIMEOUT_SECONDS


# -- amount helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize('value, expected', [
    ('12.50', Decimal('12.50')), (' 7 ', Decimal('7')), (3, Decimal('3')), (Decimal('0.1'), Decimal('0.1')),
    (None, None), (True, None), (1.5, None), ('', None), ('abc', None), ('NaN', None), ('-Infinity', None),
    ({}, None), ([], None),
])
def test_parse_amount(value, expected):
    assert nr.parse_amount(value) == expected
