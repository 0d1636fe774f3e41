"""NodeRails REST client.

This is the only module that knows the NodeRails wire format (paths, header names,
JSON field names). Everything else talks to it through the small typed results below,
so a change on NodeRails' side is a change here and in tests/test_client.py only.

No Django import: the unit tests exercise this module without pretix installed.
"""

import contextvars
import json
import socket
import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Mapping, Optional
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    HTTPError as Urllib3Error,
    MaxRetryError,
    NewConnectionError,
)

from .conf import API_BASE_URL, DISTRIBUTION, HTTP_TIMEOUT_SECONDS, VERSION

USER_AGENT = '%s/%s' % (DISTRIBUTION, VERSION)

# Checkout session states as NodeRails spells them.
STATUS_OPEN = 'OPEN'
STATUS_PAID = 'PAID'
STATUS_EXPIRED = 'EXPIRED'
STATUS_FAILED = 'FAILED'
# Not payable as they stand: EXPIRED for good, FAILED until the customer tries again in the hosted
# checkout (docs/noderails-contract.md).
UNPAYABLE_STATUSES = frozenset({STATUS_EXPIRED, STATUS_FAILED})
KNOWN_STATUSES = frozenset({STATUS_OPEN, STATUS_PAID, STATUS_EXPIRED, STATUS_FAILED})
# Refund states that say NodeRails did not, and will not, carry the refund out.
REFUND_REFUSED_STATUSES = frozenset({'REJECTED', 'FAILED', 'CANCELED', 'CANCELLED'})

# A hostile or broken upstream must not make us buffer megabytes per call.
MAX_RESPONSE_BYTES = 256 * 1024


class NodeRailsError(Exception):
    """Base class for every failure talking to NodeRails."""

    def __init__(self, message: str, *, status: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.status = status


class NodeRailsUnavailable(NodeRailsError):
    """Timeout, connection failure or 5xx: worth retrying later. Unless it is NodeRailsNotSent,
    NodeRails may have carried the request out."""


class NodeRailsTimeout(NodeRailsUnavailable):
    """The request was sent but NodeRails did not answer in time: it may have been carried out."""


class NodeRailsNotSent(NodeRailsUnavailable):
    """No connection to NodeRails was made, so nothing was sent: the request was certainly not carried out."""


class NodeRailsRequestRejected(NodeRailsError):
    """4xx: NodeRails understood the request and refused it; retrying will not help."""


class NodeRailsBadResponse(NodeRailsError):
    """2xx whose body is not the JSON we were promised."""


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    status: str
    expires_at: Optional[str]


@dataclass(frozen=True)
class PublicSession:
    session_id: str
    status: str
    amount: Optional[Decimal]
    currency: Optional[str]
    payment_intent_id: Optional[str]
    tx_hash: Optional[str]
    chain_id: Optional[int]

    @property
    def is_paid(self) -> bool:
        return self.status == STATUS_PAID

    @property
    def has_failed(self) -> bool:
        return self.status in UNPAYABLE_STATUSES


@dataclass(frozen=True)
class Refund:
    refund_id: Optional[str]
    status: str


def format_amount(amount: Decimal, places: int = 2) -> str:
    """Decimal string with exactly the currency's places ("12.50", "1000", "0.125")."""
    exponent = Decimal(1).scaleb(-places)
    return str(Decimal(amount).quantize(exponent, rounding=ROUND_HALF_UP))


def parse_amount(value: Any) -> Optional[Decimal]:
    """Amount from a NodeRails body; None when absent or not a finite number.

    Accepts decimal strings and JSON numbers (decoded as Decimal, never float, so
    "12.50" and 12.5 compare equal without binary rounding). Booleans are rejected
    although bool is an int subclass.
    """
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, (str, int, Decimal)):
        return None
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _optional_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def parse_int(value: Any) -> Optional[int]:
    """A JSON integer (e.g. chainId); None for anything else, booleans and 1.5 included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


class NodeRailsClient:
    """One configured NodeRails app (live or test credentials)."""

    def __init__(self, app_id: str, api_key: str, *, base_url: str = API_BASE_URL,
                 timeout: float = HTTP_TIMEOUT_SECONDS, session: Optional[requests.Session] = None):
        self.app_id = app_id or ''
        self.api_key = api_key or ''
        self.base_url = (base_url or API_BASE_URL).rstrip('/')
        self.timeout = timeout
        self.http = session or new_http_session()

    # -- public API ---------------------------------------------------------------

    def create_checkout_session(self, *, amount: Decimal, currency: str, reference: str,
                                metadata: Mapping[str, str], idempotency_key: str,
                                currency_places: int = 2) -> CheckoutSession:
        body = {
            'amount': format_amount(amount, currency_places),
            'currency': currency,
            'reference': reference,
            'metadata': dict(metadata),
        }
        data = self._request('POST', '/checkout-sessions', body=body, idempotency_key=idempotency_key)
        session_id = _optional_str(data.get('sessionId'))
        if not session_id:
            raise NodeRailsBadResponse('NodeRails did not return a sessionId.')
        return CheckoutSession(
            session_id=session_id,
            status=_optional_str(data.get('status')) or STATUS_OPEN,
            expires_at=_optional_str(data.get('expiresAt')),
        )

    def get_public_session(self, session_id: str) -> PublicSession:
        data = self._request('GET', '/checkout-sessions/public/' + _segment(session_id))
        status = _optional_str(data.get('status'))
        if not status:
            raise NodeRailsBadResponse('NodeRails did not return a session status.')
        currency = _optional_str(data.get('currency'))
        return PublicSession(
            # Keep the id we asked for when the body omits it; a body naming a different
            # session is a broken upstream, not something to silently accept.
            session_id=_checked_session_id(data.get('sessionId'), session_id),
            status=status.upper(),
            amount=parse_amount(data.get('amount')),
            currency=currency.upper() if currency else None,
            payment_intent_id=_optional_str(data.get('paymentIntentId')),
            tx_hash=_optional_str(data.get('txHash')),
            chain_id=parse_int(data.get('chainId')),
        )

    def refund_payment_intent(self, intent_id: str, *, amount: Decimal, reason: str,
                              idempotency_key: str, currency_places: int = 2) -> Refund:
        body = {'amount': format_amount(amount, currency_places), 'reason': reason}
        path = '/payments/intents/%s/refund' % _segment(intent_id)
        data = self._request('POST', path, body=body, idempotency_key=idempotency_key)
        status = _optional_str(data.get('status'))
        if not status:
            raise NodeRailsBadResponse('NodeRails did not return a refund status.')
        if status.upper() in REFUND_REFUSED_STATUSES:
            # A refusal in a 2xx is a refusal all the same: no caller may count it as money on its way.
            raise NodeRailsRequestRejected('NodeRails answered the refund with %s: it was not carried out.'
                                           % status.upper())
        return Refund(refund_id=_optional_str(data.get('refundId')), status=status.upper())

    # -- transport ----------------------------------------------------------------

    def _headers(self, idempotency_key: Optional[str]) -> dict:
        headers = {
            'x-app-id': self.app_id,
            'x-api-key': self.api_key,
            'Accept': 'application/json',
            'User-Agent': USER_AGENT,
        }
        if idempotency_key is not None:
            headers['Idempotency-Key'] = idempotency_key
        return headers

    def _request(self, method: str, path: str, *, body: Optional[dict] = None,
                 idempotency_key: Optional[str] = None) -> dict:
        headers = self._headers(idempotency_key)
        data = None
        if body is not None:
            headers['Content-Type'] = 'application/json'
            data = json.dumps(body, separators=(',', ':')).encode('utf-8')
        with _Deadline(self.timeout) as deadline:
            try:
                response = self.http.request(method, self.base_url + path, data=data, headers=headers,
                                             timeout=self.timeout, allow_redirects=False, stream=True)
                content = _read_capped(response)
            except requests.ConnectTimeout as exc:
                raise NodeRailsNotSent('NodeRails could not be reached in time.') from exc
            except requests.RequestException as exc:
                raise _transport_error(exc, deadline) from exc
            except Urllib3Error as exc:
                # Raised past requests, e.g. by pretix's guard against requests to private
                # networks (ALLOW_HTTP_TO_PRIVATE_NETWORKS) when the API URL resolves to one.
                raise NodeRailsNotSent('NodeRails could not be reached: %s' % exc) from exc
        if deadline.expired:
            # The answer was cut off by the deadline, even if what arrived looks complete.
            raise NodeRailsTimeout('NodeRails did not answer within %s s.' % self.timeout)
        return _decode(response.status_code, content)


def _transport_error(exc: requests.RequestException, deadline: '_Deadline') -> NodeRailsError:
    if deadline.expired or isinstance(exc, requests.Timeout):
        return NodeRailsTimeout('NodeRails did not answer within %s s.' % deadline.seconds)
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    if isinstance(reason, NewConnectionError):
        return NodeRailsNotSent('NodeRails could not be reached.')
    return NodeRailsUnavailable('The connection to NodeRails broke off.')


# -- the deadline of one call ---------------------------------------------------------------
#
# requests' timeout bounds each socket operation, not the call: an upstream sending one byte a
# second keeps a worker forever. _Deadline bounds the whole call: when it passes, every
# connection the call uses is shut down, which ends a read blocked on it at once. The
# connection pools below tell the call in progress (a context variable) which connections it
# took, so nothing else is touched, and pretix's own connection classes (its guard against
# requests to private networks) stay in use.

_CURRENT_DEADLINE = contextvars.ContextVar('noderails_call_deadline', default=None)
# While a call runs past its deadline (still connecting when it passed), connections it opens
# meanwhile are shut down at this pace.
_SHUTDOWN_RECHECK_SECONDS = 0.05


class _Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._connections = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def __enter__(self) -> '_Deadline':
        self._token = _CURRENT_DEADLINE.set(self)
        threading.Thread(target=self._enforce, name='noderails-deadline', daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        _CURRENT_DEADLINE.reset(self._token)

    def watch(self, connection) -> None:
        with self._lock:
            self._connections.append(connection)

    def _enforce(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        while not self._done.is_set():
            with self._lock:
                sockets = [c.sock for c in self._connections if getattr(c, 'sock', None) is not None]
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed already
            self._done.wait(_SHUTDOWN_RECHECK_SECONDS)


class _WatchedPoolMixin:
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout=timeout)
        deadline = _CURRENT_DEADLINE.get()
        if deadline is not None:
            deadline.watch(connection)
        return connection


class _WatchedHTTPConnectionPool(_WatchedPoolMixin, HTTPConnectionPool):
    pass


class _WatchedHTTPSConnectionPool(_WatchedPoolMixin, HTTPSConnectionPool):
    pass


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connection pools that report their connections to the call's deadline."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            'http': _WatchedHTTPConnectionPool, 'https': _WatchedHTTPSConnectionPool,
        }


def new_http_session() -> requests.Session:
    session = requests.Session()
    adapter = _DeadlineAdapter()
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session


def _segment(value: str) -> str:
    """One URL path segment; ids are quoted so they can never add path components."""
    if not isinstance(value, str) or not value:
        raise ValueError('an id is required')
    return quote(value, safe='')


def _checked_session_id(returned: Any, requested: str) -> str:
    if returned is None:
        return requested
    if returned != requested:
        raise NodeRailsBadResponse('NodeRails answered for a different checkout session.')
    return requested


def _read_capped(response: requests.Response) -> bytes:
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(chunk_size=16384):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise NodeRailsBadResponse('NodeRails sent an oversized response.', status=response.status_code)
            chunks.append(chunk)
    finally:
        response.close()
    return b''.join(chunks)


def _decode(status: int, content: bytes) -> dict:
    payload = _json_or_none(content)
    if 200 <= status < 300:
        if not isinstance(payload, dict):
            raise NodeRailsBadResponse('NodeRails sent a response that is not a JSON object.', status=status)
        return payload
    message = _error_message(payload) or 'NodeRails answered with HTTP %d.' % status
    if status >= 500:
        raise NodeRailsUnavailable(message, status=status)
    if status >= 400:
        raise NodeRailsRequestRejected(message, status=status)
    # 1xx/3xx: redirects are not followed, since they would re-send our API key elsewhere.
    raise NodeRailsBadResponse('NodeRails answered with unexpected HTTP %d.' % status, status=status)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content.decode('utf-8'), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return None


def _error_message(payload: Any) -> Optional[str]:
    if not isinstance(payload, dict):
        return None
    message = payload.get('message')
    if isinstance(message, list):  # some frameworks send a list of validation messages
        message = '; '.join(str(m) for m in message)
    if not isinstance(message, str) or not message.strip():
        return None
    return message.strip()[:500]
