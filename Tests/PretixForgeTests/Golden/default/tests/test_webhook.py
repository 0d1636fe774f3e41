"""Webhook signature verification against the shared vectors, plus focused checks.

webhook-signatures.json is copied byte-for-byte from pretix-forge, where the same file
is judged by the forge's own harness; these tests prove this rendered webhook.py agrees.
Only pytest is needed: webhook.py and this package's __init__ do not import Django.
"""

import base64
import hmac
import json
import re
from pathlib import Path

import pytest

from pretix_noderails import conf, webhook

VECTORS_PATH = Path(__file__).resolve().with_name('webhook-signatures.json')
VECTORS = json.loads(VECTORS_PATH.read_text(encoding='utf-8'))['vectors']
REASONS = {
    'ok', 'missing_signature', 'missing_timestamp', 'malformed_timestamp',
    'malformed_signature', 'signature_mismatch', 'stale_timestamp', 'future_timestamp',
}
SECRET = 'whsec_unit-test-secret'
BODY = b'{"id":"evt_test","type":"payment.captured","data":{"amount":"12.50"}}'
UNIT_DIVISOR = {'ms': 1000, 's': 1}[conf.TIMESTAMP_UNIT]
NOW = 1_700_000_000
EDGE = conf.TOLERANCE_SECONDS * UNIT_DIVISOR  # the tolerance in timestamp units
# This plugin's signature settings, as views.py passes them.
PLUGIN = {'payload_scheme': conf.SIGNATURE_PAYLOAD, 'timestamp_unit': conf.TIMESTAMP_UNIT,
          'tolerance_seconds': conf.TOLERANCE_SECONDS}


def raw_body(vector):
    if 'body' in vector:
        return vector['body'].encode('utf-8')
    return base64.b64decode(vector['body_base64'], validate=True)


def verify(vector):
    config = vector['config']
    headers = vector['headers']
    return webhook.verify_signature(
        vector['secret'], raw_body(vector), headers['x-noderails-signature'], headers['x-noderails-timestamp'], vector['now'],
        payload_scheme=config['signature_payload'], timestamp_unit=config['timestamp_unit'], tolerance_seconds=config['tolerance_seconds'],
    )


def stamp(seconds_from_now):
    """Timestamp header text in this plugin's configured unit."""
    return str(int((NOW + seconds_from_now) * UNIT_DIVISOR))


def sign(timestamp, body=BODY):
    return webhook.compute_signature(SECRET, body, timestamp, payload_scheme=conf.SIGNATURE_PAYLOAD)


def check(signature, timestamp, body=BODY, now=NOW):
    """Verify with the plugin's rendered settings (scheme, unit, tolerance)."""
    return webhook.verify_signature(SECRET, body, signature, timestamp, now, **PLUGIN)


@pytest.mark.parametrize('vector', VECTORS, ids=[v['name'] for v in VECTORS])
def test_vector_verdict(vector):
    verdict = verify(vector)
    assert isinstance(verdict, webhook.Verdict)
    assert (verdict.accepted, verdict.reason) == (vector['expected']['verdict'] == 'accept', vector['expected']['reason'])


@pytest.mark.parametrize('vector', [v for v in VECTORS if v['expected_hmac'] is not None], ids=lambda v: v['name'])
def test_vector_hmac(vector):
    timestamp = (vector['headers']['x-noderails-timestamp'] or '').strip(' \t') or None
    digest = webhook.compute_signature(vector['secret'], raw_body(vector), timestamp, payload_scheme=vector['config']['signature_payload'])
    assert digest == vector['expected_hmac']


def test_vector_file_is_well_formed():
    names = [v['name'] for v in VECTORS]
    assert names == sorted(names) and len(names) == len(set(names))
    for vector in VECTORS:
        assert ('body' in vector) != ('body_base64' in vector), vector['name']
        assert vector['expected']['reason'] in REASONS, vector['name']
        assert (vector['expected']['verdict'] == 'accept') == (vector['expected']['reason'] == 'ok'), vector['name']
        assert vector['expected_hmac'] is None or re.fullmatch(r'[0-9a-f]{64}', vector['expected_hmac']), vector['name']
    assert {v['expected']['reason'] for v in VECTORS} == REASONS


def test_rendered_configuration():
    # The values of the forge config this plugin was generated from, as the verifier receives them.
    assert conf.SIGNATURE_PAYLOAD == 'timestamp.body'
    assert conf.TIMESTAMP_UNIT == 'ms'
    assert conf.TOLERANCE_SECONDS == 300
    assert conf.SIGNATURE_PAYLOAD in webhook.PAYLOAD_SCHEMES and conf.TIMESTAMP_UNIT in webhook.TIMESTAMP_DIVISORS
    assert isinstance(conf.TOLERANCE_SECONDS, int) and 30 <= conf.TOLERANCE_SECONDS <= 3600
    assert webhook.SIGNATURE_HEADER == 'x-noderails-signature'
    assert webhook.TIMESTAMP_HEADER == 'x-noderails-timestamp'


def test_plugin_settings_follow_rendered_configuration():
    timestamp = stamp(0)
    assert check(sign(timestamp), timestamp) == (True, 'ok')
    other = 'body' if conf.SIGNATURE_PAYLOAD == 'timestamp.body' else 'timestamp.body'
    foreign = webhook.compute_signature(SECRET, BODY, timestamp, payload_scheme=other)
    assert check(foreign, timestamp) == (False, 'signature_mismatch')


@pytest.mark.parametrize(
    'offset, reason',
    [
        (0, 'ok'),
        (-EDGE, 'ok'),
        (-EDGE - 1, 'stale_timestamp'),
        (EDGE, 'ok'),
        (EDGE + 1, 'future_timestamp'),
    ],
    ids=['now', 'exactly-tolerance-old', 'one-unit-too-old', 'exactly-tolerance-ahead', 'one-unit-too-far-ahead'],
)
def test_replay_window_edges(offset, reason):
    # offset is in timestamp units, so "one unit" is 1 ms or 1 s depending on the config.
    timestamp = str(NOW * UNIT_DIVISOR + offset)
    assert check(sign(timestamp), timestamp) == (reason == 'ok', reason)


def test_replay_of_captured_delivery_goes_stale():
    timestamp = stamp(0)
    signature = sign(timestamp)
    assert check(signature, timestamp).accepted
    later = NOW + conf.TOLERANCE_SECONDS + 1
    assert check(signature, timestamp, now=later) == (False, 'stale_timestamp')


def test_now_defaults_to_wall_clock(monkeypatch):
    monkeypatch.setattr(webhook.time, 'time', lambda: float(NOW))
    timestamp = stamp(0)
    assert webhook.verify_signature(SECRET, BODY, sign(timestamp), timestamp, **PLUGIN).accepted
    monkeypatch.setattr(webhook.time, 'time', lambda: float(NOW + 10 * conf.TOLERANCE_SECONDS + 10))
    assert webhook.verify_signature(SECRET, BODY, sign(timestamp), timestamp, **PLUGIN).reason == 'stale_timestamp'


def test_signature_is_compared_in_constant_time(monkeypatch):
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return True

    monkeypatch.setattr(hmac, 'compare_digest', spy)
    timestamp = stamp(0)
    forged = 'f' * 64
    # The spy claims equality, so an accepted forgery proves the verdict rests on compare_digest.
    assert check(forged, timestamp) == (True, 'ok')
    assert calls == [(sign(timestamp), forged)]


def test_compare_digest_not_reached_for_malformed_headers(monkeypatch):
    def fail(a, b):
        raise AssertionError('compare_digest called for a malformed signature')

    monkeypatch.setattr(hmac, 'compare_digest', fail)
    assert check('sha256=' + 'a' * 64, stamp(0)).reason == 'malformed_signature'


def test_compute_signature_matches_stdlib_hmac():
    timestamp = stamp(0)
    payload = BODY if conf.SIGNATURE_PAYLOAD == 'body' else f'{timestamp}.'.encode() + BODY
    assert sign(timestamp) == hmac.new(SECRET.encode(), payload, 'sha256').hexdigest()


def test_str_body_is_refused():
    # A decoded body has already lost the exact bytes that were signed.
    with pytest.raises(TypeError):
        webhook.verify_signature(SECRET, BODY.decode(), 'a' * 64, stamp(0), NOW, **PLUGIN)


@pytest.mark.parametrize('secret', ['', None])
def test_unconfigured_secret_is_refused(secret):
    # An empty HMAC key would let anyone forge deliveries.
    with pytest.raises(ValueError):
        webhook.verify_signature(secret, BODY, 'a' * 64, stamp(0), NOW, **PLUGIN)


@pytest.mark.parametrize('option', [{'payload_scheme': 'raw'}, {'timestamp_unit': 'us'}])
def test_unknown_configuration_is_refused(option):
    with pytest.raises(ValueError):
        webhook.verify_signature(SECRET, BODY, 'a' * 64, stamp(0), NOW, **dict(PLUGIN, **option))
