import json
import os
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from noderails_sim import Simulator  # noqa: E402

LIVE = {'app_live': 'key_live'}
CREDS = {'app_live': 'key_live', 'app_test': 'key_test'}


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body.decode('utf-8'))


def call(method, url, body=None, headers=None, timeout=5):
    """Real HTTP; returns Response for any status (raises on connection errors/timeouts)."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        headers.setdefault('Content-Type', 'application/json')
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return Response(r.status, dict(r.headers.items()), r.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers.items()), exc.read())


def auth(app='app_live', key='key_live', idem=None):
    h = {'x-app-id': app, 'x-api-key': key, 'Accept': 'application/json'}
    if idem is not None:
        h['Idempotency-Key'] = idem
    return h


SESSION_BODY = {'amount': '12.50', 'currency': 'USD', 'reference': 'org/event/cart-1',
                'metadata': {'organizer': 'org', 'event': 'event', 'order': '', 'payment': ''}}


class Receiver:
    """A webhook endpoint: records every POST and answers with self.status."""

    def __init__(self):
        self.received = []
        self.status = 200
        receiver = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                receiver.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n)))
                body = b'ok'
                self.send_response(receiver.status)
                self.send_header('Content-Length', str(len(body)))
                if receiver.status == 503:
                    self.send_header('Retry-After', '10')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()
        self.url = 'http://127.0.0.1:%d/org/event/noderails/webhook/' % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sim(receiver):
    s = Simulator(credentials=CREDS, webhook_url=receiver.url, webhook_secret='whsec_live',
                  webhook_secrets={'app_test': 'whsec_test'}, separate_ui=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def session(sim):
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='k-1'))
    assert r.status == 201, r.body
    return r.json['sessionId']
