"""Webhook signing exactly as the NodeRails contract describes it (CONTRACT.md).

HMAC-SHA256 keyed with the UTF-8 bytes of the whole secret (``whsec_`` prefix
included), hex encoded in lower case, over either ``<timestamp>.<raw body>`` or the
raw body alone. The timestamp is Unix time in milliseconds or seconds.
"""

import hashlib
import hmac
import time
from typing import Optional, Union

SIGNATURE_HEADER = 'x-noderails-signature'
TIMESTAMP_HEADER = 'x-noderails-timestamp'
SCHEMES = ('timestamp.body', 'body')
UNITS = ('ms', 's')


def compute_signature(secret: str, body: bytes, timestamp: Union[str, int, None], *,
                      payload_scheme: str = 'timestamp.body') -> str:
    if payload_scheme not in SCHEMES:
        raise ValueError('payload_scheme must be one of %s' % (SCHEMES,))
    if isinstance(body, str):
        body = body.encode('utf-8')
    if payload_scheme == 'timestamp.body':
        payload = ('%s.' % timestamp).encode('ascii') + body
    else:
        payload = body
    return hmac.new(secret.encode('utf-8'), payload, hashlib.sha256).hexdigest()


def make_timestamp(unit: str = 'ms', now: Optional[float] = None, offset_seconds: float = 0) -> str:
    if unit not in UNITS:
        raise ValueError('unit must be one of %s' % (UNITS,))
    moment = (time.time() if now is None else now) + offset_seconds
    return str(int(moment * 1000)) if unit == 'ms' else str(int(moment))


def signed_headers(secret: str, body: bytes, *, payload_scheme: str = 'timestamp.body',
                   timestamp_unit: str = 'ms', timestamp: Optional[str] = None,
                   offset_seconds: float = 0) -> dict:
    """Headers of one webhook delivery (timestamp is always sent, as NodeRails does)."""
    ts = timestamp if timestamp is not None else make_timestamp(timestamp_unit, offset_seconds=offset_seconds)
    return {
        'Content-Type': 'application/json',
        SIGNATURE_HEADER: compute_signature(secret, body, ts, payload_scheme=payload_scheme),
        TIMESTAMP_HEADER: ts,
    }
