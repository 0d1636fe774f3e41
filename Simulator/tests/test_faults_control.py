"""Fault knobs, the hosted checkout page and the /_sim/ control API, over real HTTP."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error

import pytest
from conftest import CREDS, SESSION_BODY, auth, call

from noderails_sim import Simulator

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_forced_errors_for_n_requests(sim, session):
    url = sim.api_url + '/checkout-sessions/public/' + session
    sim.fail_next('get_session', status=503, count=2)
    assert [call('GET', url).status for _ in range(3)] == [503, 503, 200]
    sim.fail_next('api', status=500, count=1, message='boom')
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='n'))
    assert r.status == 500 and r.json['message'] == 'boom'
    assert len(sim.sessions) == 1  # the failed call created nothing
    # every request is still recorded
    assert len(sim.requests_for('get_session')) == 3


def test_timeout_sleeps_longer_than_the_client(sim, session):
    # 30 s, far beyond the client's 1 s however loaded the machine; stop() wakes the sleeper.
    url = sim.api_url + '/checkout-sessions/public/' + session
    sim.delay_next('get_session', 30)
    started = time.monotonic()
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        call('GET', url, timeout=1.0)
    assert time.monotonic() - started < 20
    assert call('GET', url).status == 200  # only the next one was slow


def test_held_request_is_carried_out_when_released(sim, session):
    held = sim.hold_next('create_session')
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='held'), timeout=1.0)
    assert len(sim.sessions) == 1  # waiting, not carried out
    held.release()
    assert _eventually(lambda: len(sim.sessions) == 2)
    assert call('GET', sim.api_url + '/checkout-sessions/public/' + session).status == 200


def _eventually(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_latency_per_route(sim, session):
    # Long enough that the other route's quick answer stays well below it on a loaded machine.
    sim.set_latency('get_session', 1.5)
    started = time.monotonic()
    call('GET', sim.api_url + '/checkout-sessions/public/' + session)
    assert time.monotonic() - started >= 1.5
    started = time.monotonic()
    call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth())
    assert time.monotonic() - started < 1.5
    sim.set_latency('get_session', 0)
    with pytest.raises(ValueError):
        sim.set_latency('nonsense', 1)


def test_dropped_connection(sim, session):
    sim.drop_next('get_session')
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        call('GET', sim.api_url + '/checkout-sessions/public/' + session)


def test_drip_carries_the_request_out_and_trickles_the_answer(sim, session):
    """Every single read gets a byte quickly; only the whole answer is slow."""
    sim.drip_next('create_session', interval=0.05)
    raw = socket.create_connection((sim.api_url.split('//')[1].split(':')[0], int(sim.api_url.rsplit(':', 1)[1])))
    body = json.dumps(SESSION_BODY).encode()
    head = ('POST /checkout-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
            'Content-Length: %d\r\n' % len(body)) + ''.join('%s: %s\r\n' % h for h in auth(idem='drip').items())
    raw.sendall(head.encode() + b'\r\n' + body)
    raw.settimeout(1.0)
    started, chunks = time.monotonic(), []
    while True:
        chunk = raw.recv(1024)
        if not chunk:
            break
        chunks.append(chunk)
    raw.close()
    answer = b''.join(chunks)
    assert answer.startswith(b'HTTP/1.1 201 ') and b'"sessionId"' in answer
    # Byte by byte: a slow reader may get a few at once, never the answer in a handful of reads.
    assert len(chunks) > len(answer) // 10, 'the answer came in %d pieces' % len(chunks)
    assert time.monotonic() - started >= 0.05 * (len(answer) - 1)
    assert len(sim.sessions) == 2  # carried out, like any other request


def test_garbled_answer_after_the_request_was_carried_out(sim, session):
    sim.garble_next('create_session')
    r = call('POST', sim.api_url + '/checkout-sessions', SESSION_BODY, auth(idem='garbled'))
    assert r.status == 201 and not r.body.startswith(b'{')
    assert len(sim.sessions) == 2


def test_stop_is_fast_while_a_request_sleeps(receiver):
    s = Simulator(credentials=CREDS)
    url = s.start()
    s.delay_next('*', 30)
    import threading
    t = threading.Thread(target=lambda: _swallow(lambda: call('GET', url + '/checkout/x', timeout=10)))
    t.start()
    assert _eventually(lambda: s.requests), 'the request never reached the simulator'
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 3
    t.join(5)


def _swallow(fn):
    try:
        fn()
    except Exception:
        pass


def test_checkout_page_headers_and_script(sim, session):
    r = call('GET', sim.ui_url + '/checkout/' + session)
    assert r.status == 200
    assert r.headers['Content-Security-Policy'] == 'frame-ancestors *'
    assert 'X-Frame-Options' not in r.headers
    html = r.body.decode()
    assert '<script src="/checkout-assets/checkout.js"></script>' in html
    assert '<script>' not in html  # no inline script
    assert 'data-session-id="%s"' % session in html and 'data-post-message="1"' in html
    assert 'id="nr-pay"' in html and 'id="nr-fail"' in html and '12.50 USD' in html
    js = call('GET', sim.ui_url + '/checkout-assets/checkout.js')
    assert js.status == 200 and js.headers['Content-Type'].startswith('application/javascript')
    assert b"'noderails:checkout-complete'" in js.body and b"'noderails:checkout-failed'" in js.body
    assert call('GET', sim.ui_url + '/checkout/cs_nope').status == 404
    sim.configure(post_message=False)
    assert 'data-post-message="0"' in call('GET', sim.ui_url + '/checkout/' + session).body.decode()


def test_checkout_page_escapes_reference(sim):
    sid = sim.create_session('1.00', reference='<script>alert(1)</script>')['sessionId']
    html = call('GET', sim.ui_url + '/checkout/' + sid).body.decode()
    assert '<script>alert' not in html and '&lt;script&gt;' in html


def test_checkout_buttons_endpoints(sim, session):
    r = call('POST', sim.ui_url + '/checkout/%s/pay' % session)
    assert r.status == 200 and r.json['status'] == 'PAID' and r.json['paymentIntentId']
    assert call('POST', sim.ui_url + '/checkout/%s/fail' % session).status == 409
    other = sim.create_session('1.00')['sessionId']
    r = call('POST', sim.ui_url + '/checkout/%s/fail' % other)
    assert r.json['status'] == 'FAILED'
    assert call('POST', sim.ui_url + '/checkout/%s/pay' % other).status == 409
    page = call('GET', sim.ui_url + '/checkout/' + other).body.decode()
    assert 'disabled' in page


JS_HARNESS = textwrap.dedent(r'''
    const fs = require('fs');
    const [script, sessionId, postMessage, action, outcome] = process.argv.slice(2);
    const posted = [];
    const els = {};
    function el(id) {
        return els[id] = els[id] || {id, hidden: false, disabled: false, textContent: '', attrs: {},
            listeners: {}, setAttribute(k, v) { this.attrs[k] = v; }, getAttribute(k) { return this.attrs[k]; },
            addEventListener(t, f) { this.listeners[t] = f; }};
    }
    const root = el('nr-checkout');
    root.attrs = {'data-session-id': sessionId, 'data-action-base': '/checkout/' + sessionId,
                  'data-post-message': postMessage};
    const parent = {postMessage(msg, origin) { posted.push({msg, origin}); }};
    global.window = {parent};
    global.document = {getElementById: el};
    let requested = null;
    global.fetch = (url, opts) => { requested = {url, method: opts.method};
        const ok = outcome !== 'error';
        const data = ok ? {sessionId, status: action === 'pay' ? 'PAID' : 'FAILED', paymentIntentId: 'pi_1'}
                        : {message: 'Checkout session is EXPIRED.'};
        return Promise.resolve({ok, status: ok ? 200 : 409, json: () => Promise.resolve(data)}); };
    eval(fs.readFileSync(script, 'utf8'));
    el(action === 'pay' ? 'nr-pay' : 'nr-fail').listeners.click();
    setTimeout(() => console.log(JSON.stringify({posted, requested, status: el('nr-status').textContent,
        error: el('nr-error').hidden ? null : el('nr-error').textContent})), 20);
''')


@pytest.mark.skipif(shutil.which('node') is None, reason='node not installed')
@pytest.mark.parametrize('action, post, outcome, expected', [
    ('pay', '1', 'ok', [{'msg': {'type': 'noderails:checkout-complete', 'sessionId': 'cs_1', 'intentId': 'pi_1',
                                 'status': 'PAID'}, 'origin': '*'}]),
    ('fail', '1', 'ok', [{'msg': {'type': 'noderails:checkout-failed', 'sessionId': 'cs_1', 'intentId': 'pi_1',
                                  'status': 'FAILED'}, 'origin': '*'}]),
    ('pay', '0', 'ok', []),
    ('pay', '1', 'error', []),
])
def test_checkout_js_posts_to_parent(tmp_path, action, post, outcome, expected):
    harness = tmp_path / 'h.js'
    harness.write_text(JS_HARNESS)
    out = subprocess.run(['node', str(harness), os.path.join(HERE, 'noderails_sim', 'assets', 'checkout.js'),
                          'cs_1', post, action, outcome], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result['posted'] == expected
    assert result['requested'] == {'url': '/checkout/cs_1/' + action, 'method': 'POST'}
    if outcome == 'error':
        assert result['error'] == 'Checkout session is EXPIRED.'


def test_control_api(sim, receiver, session):
    base = sim.api_url + '/_sim'
    assert call('GET', base + '/health').json['ok'] is True
    assert [r['path'] for r in call('GET', base + '/requests').json] == ['/checkout-sessions']
    assert call('GET', base + '/sessions/' + session).json['status'] == 'OPEN'
    paid = call('POST', base + '/sessions/%s/pay' % session, {'amount': '12.50'}).json
    assert paid['status'] == 'PAID'
    deliveries = call('POST', base + '/deliver', {'type': 'payment.captured', 'sessionId': session, 'times': 2,
                                                  'timestampOffset': -1}).json
    assert [d['status'] for d in deliveries] == [200, 200] and len(receiver.received) == 2
    assert len(call('GET', base + '/deliveries').json) == 2
    raw = call('POST', base + '/deliver', {'type': 'payment.captured', 'sessionId': session, 'rawBody': '{x'}).json
    assert raw[0]['requestBody'] == '{x'
    assert call('POST', base + '/faults', {'route': 'get_session', 'status': 500, 'count': 1}).status == 201
    assert call('GET', sim.api_url + '/checkout-sessions/public/' + session).status == 500
    assert call('GET', sim.api_url + '/checkout-sessions/public/' + session).status == 200
    call('POST', base + '/latency', {'route': 'api', 'seconds': 0.01})
    assert call('GET', base + '/faults').json['latency'] == {'api': 0.01}
    call('DELETE', base + '/faults')
    cfg = call('POST', base + '/config', {'webhookDuplicates': 3, 'postMessage': False}).json
    assert cfg['webhook_duplicates'] == 3 and cfg['post_message'] is False
    assert call('POST', base + '/config', {'bogus': 1}).status == 400
    assert call('POST', base + '/config', {'signatureScheme': 'nope'}).status == 400
    call('DELETE', base + '/requests')
    assert call('GET', base + '/requests').json == []
    call('POST', base + '/reset')
    assert call('GET', base + '/sessions').json == []
    assert call('GET', base + '/nope').status == 404


def test_control_token(receiver):
    with Simulator(credentials=CREDS, control_token='t0k') as s:
        assert call('GET', s.api_url + '/_sim/health').status == 401
        assert call('GET', s.api_url + '/_sim/health', headers={'x-sim-token': 't0k'}).status == 200


def test_cli_runs_and_stops(receiver):
    env = dict(os.environ, NR_KEY='key_live', NR_SECRET='whsec_live', PYTHONPATH=HERE)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'noderails_sim', '--port', '0', '--ui-port', '0', '--app-id', 'app_live',
         '--api-key-env', 'NR_KEY', '--webhook-url', receiver.url, '--webhook-secret-env', 'NR_SECRET',
         '--refund-settle-seconds', '0.1', '--quiet'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        api = re.search(r'(http://127\.0\.0\.1:\d+)', lines[1]).group(1)
        ui = re.search(r'(http://127\.0\.0\.1:\d+)', lines[2]).group(1)
        assert api != ui
        assert call('POST', api + '/checkout-sessions', SESSION_BODY, auth('app_live', 'bad')).status == 401
        sid = call('POST', api + '/checkout-sessions', SESSION_BODY, auth()).json['sessionId']
        assert call('GET', ui + '/checkout/' + sid).status == 200
        assert call('POST', ui + '/checkout/%s/pay' % sid).json['status'] == 'PAID'
        deadline = time.time() + 5
        while not receiver.received and time.time() < deadline:
            time.sleep(0.05)
        assert json.loads(receiver.received[0][2])['type'] == 'payment.captured'
        assert 'key_live' not in ' '.join(proc.args)  # secrets only via the environment
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_missing_secret_env():
    env = dict(os.environ, PYTHONPATH=HERE)
    env.pop('NR_UNSET', None)
    out = subprocess.run([sys.executable, '-m', 'noderails_sim', '--port', '0', '--webhook-url', 'http://x/',
                          '--webhook-secret-env', 'NR_UNSET'], capture_output=True, text=True, env=env, timeout=20)
    assert out.returncode != 0 and 'NR_UNSET' in out.stderr
