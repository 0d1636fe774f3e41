"""HMAC-SHA256 verification of NodeRails webhooks.

Standard library only, and no import of Django or of this package: the webhook view uses
this module, but so do the unit tests and pretix-forge's vector harness, which load it alone.
So it holds no configuration either: callers pass the signature scheme, timestamp unit and
tolerance (the plugin's own come from conf.py).

The order of checks and the reason codes are a contract shared with pretix-forge's
Tests/Vectors/webhook-signatures.json (copied to tests/webhook-signatures.json); the
first failing check decides the reason, so a reordering is a behaviour change.
"""

import hashlib
import hmac
import re
import time
from typing import NamedTuple, Optional, Union

# Lower-case, as Django's request.headers lookup is case-insensitive anyway.
SIGNATURE_HEADER = 'x-noderails-signature'
TIMESTAMP_HEADER = 'x-noderails-timestamp'

PAYLOAD_SCHEMES = ('timestamp.body', 'body')
TIMESTAMP_DIVISORS = {'ms': 1000, 's': 1}

REASON_OK = 'ok'
REASON_MISSING_SIGNATURE = 'missing_signature'
REASON_MISSING_TIMESTAMP = 'missing_timestamp'
REASON_MALFORMED_TIMESTAMP = 'malformed_timestamp'
REASON_MALFORMED_SIGNATURE = 'malformed_signature'
REASON_SIGNATURE_MISMATCH = 'signature_mismatch'
REASON_STALE_TIMESTAMP = 'stale_timestamp'
REASON_FUTURE_TIMESTAMP = 'future_timestamp'

# Only spaces and tabs (HTTP optional whitespace) are trimmed. str.strip() would also
# eat newlines and Unicode spaces, quietly accepting header values the contract rejects.
_HEADER_WHITESPACE = ' \t'
# Explicit ASCII classes: \d and int() also accept other scripts' digits, '+', '_' and
# padding, so two different header texts (and signed payloads) could mean the same instant.
_TIMESTAMP_RE = re.compile(r'[0-9]{1,20}')
# Exactly what hexdigest() emits; prefixes such as 'sha256=' or upper case are rejected
# rather than normalised, so only one spelling of a signature is ever valid.
_SIGNATURE_RE = re.compile(r'[0-9a-f]{64}')

Body = Union[bytes, bytearray, memoryview]


class Verdict(NamedTuple):
    accepted: bool
    reason: str


def compute_signature(secret: str, body: Body, timestamp: Optional[Union[str, int]], *, payload_scheme: str) -> str:
    """Lower-case hex HMAC-SHA256 a sender would put in SIGNATURE_HEADER.

    ``timestamp`` is the exact text that is signed (no trimming here); it is ignored
    for the 'body' scheme.
    """
    _require_secret(secret)
    payload = _signed_payload(_require_bytes(body), timestamp, payload_scheme)
    return hmac.new(secret.encode('utf-8'), payload, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    body: Body,
    signature: Optional[str],
    timestamp: Optional[str],
    now: Optional[float] = None,
    *,
    payload_scheme: str,
    timestamp_unit: str,
    tolerance_seconds: int,
) -> Verdict:
    """Check a delivery's headers against its raw body; the first failing check wins.

    Configuration errors (empty secret, unknown scheme or unit, a str body) raise
    instead of returning a verdict: they are the operator's bug, not the sender's.
    """
    _require_secret(secret)
    body = _require_bytes(body)
    _require_scheme(payload_scheme)
    _require_unit(timestamp_unit)

    signature = _strip_header(signature)
    timestamp = _strip_header(timestamp)
    failure = _check_format(signature, timestamp)
    if failure:
        return Verdict(False, failure)
    expected = compute_signature(secret, body, timestamp, payload_scheme=payload_scheme)
    # Constant time, so response timing does not reveal how many leading characters
    # of a forged signature were right.
    if not hmac.compare_digest(expected, signature):
        return Verdict(False, REASON_SIGNATURE_MISMATCH)
    # Freshness is judged only for authentic deliveries, so an unauthenticated caller
    # learns nothing about the verifier's clock or window from the reason.
    return _check_freshness(int(timestamp), time.time() if now is None else now, timestamp_unit, tolerance_seconds)


def _check_format(signature: str, timestamp: str) -> Optional[str]:
    """Reason for the first missing or malformed header, or None if both look right."""
    if not signature:
        return REASON_MISSING_SIGNATURE
    if not timestamp:
        return REASON_MISSING_TIMESTAMP
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        return REASON_MALFORMED_TIMESTAMP
    if not _SIGNATURE_RE.fullmatch(signature):
        return REASON_MALFORMED_SIGNATURE
    return None


def _check_freshness(timestamp: int, now: float, unit: str, tolerance_seconds: int) -> Verdict:
    """Replay window, inclusive at both ends, so clocks exactly at the limit still pass."""
    sent_at = timestamp / TIMESTAMP_DIVISORS[unit]
    if now - sent_at > tolerance_seconds:
        return Verdict(False, REASON_STALE_TIMESTAMP)
    if sent_at - now > tolerance_seconds:
        return Verdict(False, REASON_FUTURE_TIMESTAMP)
    return Verdict(True, REASON_OK)


def _signed_payload(body: bytes, timestamp: Optional[Union[str, int]], payload_scheme: str) -> bytes:
    _require_scheme(payload_scheme)
    if payload_scheme == 'body':
        return body
    if timestamp is None:
        raise ValueError("the 'timestamp.body' scheme needs a timestamp to sign")
    return f'{timestamp}.'.encode('utf-8') + body


def _strip_header(value: Optional[str]) -> str:
    """Header text without surrounding spaces/tabs; '' stands for an absent header."""
    return '' if value is None else value.strip(_HEADER_WHITESPACE)


def _require_secret(secret: str) -> None:
    # An empty key is public knowledge: anyone could sign with it, so refuse to verify
    # rather than accept forgeries when the organiser has not configured a secret.
    if not isinstance(secret, str) or not secret:
        raise ValueError('the webhook signing secret is not configured')


def _require_bytes(body: Body) -> bytes:
    # A str body means someone decoded (or re-serialised) the request; signing those
    # bytes would only work by accident, so insist on the raw request body.
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError('body must be the raw request body as bytes, got %s' % type(body).__name__)
    return bytes(body)


def _require_scheme(payload_scheme: str) -> None:
    if payload_scheme not in PAYLOAD_SCHEMES:
        raise ValueError('unknown signature payload scheme %r' % (payload_scheme,))


def _require_unit(timestamp_unit: str) -> None:
    if timestamp_unit not in TIMESTAMP_DIVISORS:
        raise ValueError('unknown timestamp unit %r' % (timestamp_unit,))
