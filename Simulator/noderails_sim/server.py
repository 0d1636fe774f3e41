"""A local NodeRails: REST API, hosted checkout page and signed webhook sender.

Everything follows the wire format in the pretix-forge contract:

  POST /checkout-sessions                     (x-app-id/x-api-key, Idempotency-Key)
  GET  /checkout-sessions/public/{id}
  POST /payments/intents/{id}/refund          (x-app-id/x-api-key, Idempotency-Key)
  GET  /checkout/{id}                         hosted checkout (HTML, frame-ancestors *)
  GET  /checkout-assets/checkout.js|.css      its script and style
  POST /checkout/{id}/pay | /fail             what the page's buttons call

plus a control API under /_sim/ for tests running in another process. Embedded in a
test process, use the Python methods of :class:`Simulator` instead.

Stdlib only; binds 127.0.0.1 only.
"""

import copy
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from . import signing

HOST = '127.0.0.1'
ASSETS = Path(__file__).with_name('assets')
MAX_REQUEST_BYTES = 1024 * 1024

# Route names used by faults, latency and RecordedRequest.route.
ROUTE_CREATE_SESSION = 'create_session'
ROUTE_GET_SESSION = 'get_session'
ROUTE_REFUND = 'refund'
ROUTE_CHECKOUT_PAGE = 'checkout_page'
ROUTE_CHECKOUT_ASSET = 'checkout_asset'
ROUTE_CHECKOUT_ACTION = 'checkout_action'
ROUTE_CONTROL = 'control'
ROUTE_UNKNOWN = 'unknown'
API_ROUTES = frozenset({ROUTE_CREATE_SESSION, ROUTE_GET_SESSION, ROUTE_REFUND})
ROUTES = frozenset(API_ROUTES | {ROUTE_CHECKOUT_PAGE, ROUTE_CHECKOUT_ASSET, ROUTE_CHECKOUT_ACTION, ROUTE_UNKNOWN})
# Wildcards accepted wherever a route name is: 'api' = the three REST routes, '*' = everything but /_sim/.
ROUTE_GROUPS = {'api': API_ROUTES, '*': ROUTES}

STATUS_OPEN, STATUS_PAID, STATUS_EXPIRED, STATUS_FAILED = 'OPEN', 'PAID', 'EXPIRED', 'FAILED'

# data.status NodeRails puts into each event type.
EVENT_STATUS = {
    'created': 'CREATED', 'authorized': 'AUTHORIZED', 'captured': 'CAPTURED', 'settled': 'SETTLED',
    'refunded': 'REFUNDED', 'failed': 'FAILED', 'cancelled': 'CANCELLED',
    'completed': 'COMPLETED', 'expired': 'EXPIRED',
}


def _now_iso(offset: float = 0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (moment.microsecond // 1000)


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _parse_amount(value: Any) -> Optional[Decimal]:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- records ---------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the simulator received (control API requests are not recorded)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    route: str
    server: str
    time: float

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode('utf-8')) if self.body else None

    def to_dict(self) -> dict:
        return {
            'method': self.method, 'path': self.path, 'headers': dict(self.headers),
            'body': self.body.decode('utf-8', 'replace'), 'route': self.route, 'server': self.server,
            'time': self.time,
        }


@dataclass
class Session:
    session_id: str
    app_id: str
    amount: str
    currency: str
    reference: str
    metadata: dict
    status: str = STATUS_OPEN
    created_at: str = field(default_factory=_now_iso)
    expires_at: str = ''
    expires_ts: float = 0.0
    payment_intent_id: Optional[str] = None
    tx_hash: Optional[str] = None
    chain_id: Optional[int] = None
    # What GET /public reports; differs from amount/currency only when a test says so.
    reported_amount: Optional[str] = None
    reported_currency: Optional[str] = None

    def public(self) -> dict:
        return {
            'sessionId': self.session_id,
            'status': self.status,
            'amount': self.reported_amount if self.reported_amount is not None else self.amount,
            'currency': self.reported_currency if self.reported_currency is not None else self.currency,
            'paymentIntentId': self.payment_intent_id,
            'txHash': self.tx_hash,
            'chainId': self.chain_id,
        }

    def to_dict(self) -> dict:
        d = self.public()
        d.update({'appId': self.app_id, 'reference': self.reference, 'metadata': self.metadata,
                  'createdAt': self.created_at, 'expiresAt': self.expires_at,
                  'requestedAmount': self.amount, 'requestedCurrency': self.currency})
        return d


@dataclass
class Refund:
    refund_id: str
    intent_id: str
    session_id: str
    app_id: str
    amount: str
    currency: str
    reason: str
    status: str
    idempotency_key: Optional[str]
    created_at: str = field(default_factory=_now_iso)

    def response(self) -> dict:
        return {'refundId': self.refund_id, 'status': self.status}

    def to_dict(self) -> dict:
        return {'refundId': self.refund_id, 'paymentIntentId': self.intent_id, 'sessionId': self.session_id,
                'appId': self.app_id, 'amount': self.amount, 'currency': self.currency, 'reason': self.reason,
                'status': self.status, 'idempotencyKey': self.idempotency_key, 'createdAt': self.created_at}


@dataclass
class Fault:
    route: str
    status: Optional[int] = None     # answer with this HTTP status (JSON {"message": ...})
    delay: float = 0.0               # sleep this long first (longer than the client timeout = a timeout)
    drop: bool = False               # close the connection without answering
    count: Optional[int] = 1         # how many requests it applies to; None = until cleared
    message: Optional[str] = None
    drip: float = 0.0                # handle normally, but send the answer one byte every `drip` seconds
    garble: bool = False             # handle normally (state changes), but answer with a body that is not JSON
    held: Optional[threading.Event] = None   # wait until release() (or stop) first, then handle normally
    answer_status: Optional[int] = None  # handle normally (state changes), but answer with this HTTP status

    def release(self) -> None:
        """Let the requests held by hold_next() go on."""
        if self.held is not None:
            self.held.set()

    def matches(self, route: str) -> bool:
        return route == self.route or route in ROUTE_GROUPS.get(self.route, ())


@dataclass
class Delivery:
    """One webhook POST the simulator made."""

    event_id: str
    type: str
    attempt: int
    url: str
    request_headers: Dict[str, str]
    request_body: bytes
    status: Optional[int] = None
    response_body: bytes = b''
    error: Optional[str] = None
    # Empty when the transport does not report headers (see WebhookSender).
    response_headers: Dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict:
        return {'eventId': self.event_id, 'type': self.type, 'attempt': self.attempt, 'url': self.url,
                'requestHeaders': self.request_headers, 'requestBody': self.request_body.decode('utf-8', 'replace'),
                'status': self.status, 'responseBody': self.response_body.decode('utf-8', 'replace'),
                'responseHeaders': self.response_headers, 'error': self.error}


@dataclass
class QueuedWebhook:
    """An event NodeRails has decided to send but not sent yet (the outbox, see enqueue())."""

    event_id: str
    type: str
    session_id: Optional[str]
    document: dict
    queued_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {'eventId': self.event_id, 'type': self.type, 'sessionId': self.session_id,
                'document': self.document, 'queuedAt': self.queued_at}


# A webhook transport: (url, headers, body) -> (status, response body[, response headers]).
# The default POSTs over real HTTP; tests running pretix in-process may pass one that uses
# Django's test client. Headers are optional so such a transport can stay a two-tuple.
WebhookSender = Callable[[str, Dict[str, str], bytes], Tuple]


def http_webhook_sender(timeout: float = 15.0) -> WebhookSender:
    def send(url: str, headers: Dict[str, str], body: bytes) -> Tuple[int, bytes, Dict[str, str]]:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method='POST')
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(65536), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(65536), dict(exc.headers.items())
    return send


# -- simulator -------------------------------------------------------------------------------


class Simulator:
    """An in-memory NodeRails.

    credentials: {app_id: api_key} accepted on authenticated calls; None accepts any
        non-empty pair (handy for a first manual try, never for tests of the 401 path).
    webhook_url / webhook_secret: where events go and the default signing secret;
        webhook_secrets maps an app id to its own secret (live and test apps differ).
    signature_scheme: 'timestamp.body' or 'body'; timestamp_unit: 'ms' or 's'.
    webhook_duplicates: each event is POSTed this many times (NodeRails redelivers).
    post_message: whether the hosted checkout posts its outcome to window.parent.
    retry_after_failure: a failed attempt leaves the session payable, as a wallet payment
        retried inside the hosted checkout: the session reports FAILED until it is paid, and
        the page's buttons stay usable after Fail.
    refund_status: 'PENDING' (settled later, webhook) or 'COMPLETED' (at once).
    auto_webhooks: send payment.captured / payment.failed when the hosted page's
        buttons are used, and payment.refunded when a pending refund settles after
        refund_settle_seconds (all in background threads).
    queue_webhooks: the events the simulator sends of its own accord (mark_paid(webhook=True),
        complete_refund, auto_webhooks, ...) go to the outbox instead, where the test delivers,
        duplicates, reorders, delays or drops them (enqueue(), send_queued(), drop_queued()).
    separate_ui: serve the hosted checkout from a second port, so API and payment UI
        have different origins as in production.
    """

    def __init__(self, *, credentials: Optional[Dict[str, str]] = None, port: int = 0, ui_port: int = 0,
                 separate_ui: bool = False, webhook_url: Optional[str] = None,
                 webhook_secret: Optional[str] = None, webhook_secrets: Optional[Dict[str, str]] = None,
                 signature_scheme: str = 'timestamp.body', timestamp_unit: str = 'ms',
                 webhook_duplicates: int = 1, webhook_sender: Optional[WebhookSender] = None,
                 webhook_timeout: float = 15.0, post_message: bool = True, retry_after_failure: bool = False,
                 refund_status: str = 'PENDING',
                 auto_webhooks: bool = False, refund_settle_seconds: float = 2.0,
                 session_ttl_seconds: float = 1800, require_idempotency_key: bool = False,
                 capture_event_type: str = 'payment.captured', control_token: Optional[str] = None,
                 queue_webhooks: bool = False, verbose: bool = False):
        if signature_scheme not in signing.SCHEMES:
            raise ValueError('signature_scheme must be one of %s' % (signing.SCHEMES,))
        if timestamp_unit not in signing.UNITS:
            raise ValueError('timestamp_unit must be one of %s' % (signing.UNITS,))
        if refund_status not in ('PENDING', 'COMPLETED'):
            raise ValueError("refund_status must be 'PENDING' or 'COMPLETED'")
        self.credentials = dict(credentials) if credentials is not None else None
        self.port, self.ui_port, self.separate_ui = port, ui_port, separate_ui
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_secrets = dict(webhook_secrets or {})
        self.signature_scheme = signature_scheme
        self.timestamp_unit = timestamp_unit
        self.webhook_duplicates = webhook_duplicates
        self.webhook_sender = webhook_sender or http_webhook_sender(webhook_timeout)
        self.post_message = post_message
        self.retry_after_failure = retry_after_failure
        self.refund_status = refund_status
        self.auto_webhooks = auto_webhooks
        self.refund_settle_seconds = refund_settle_seconds
        self.session_ttl_seconds = session_ttl_seconds
        self.require_idempotency_key = require_idempotency_key
        self.capture_event_type = capture_event_type
        self.queue_webhooks = queue_webhooks
        self.control_token = control_token
        self.verbose = verbose

        self.requests: List[RecordedRequest] = []
        self.deliveries: List[Delivery] = []
        self.sessions: Dict[str, Session] = {}
        self.refunds: Dict[str, Refund] = {}
        self.faults: List[Fault] = []
        self.latency: Dict[str, float] = {}
        self.outbox: List[QueuedWebhook] = []
        # Requests being handled right now (wait_idle()).
        self._in_flight = 0
        self._idle = threading.Condition()
        self._idempotency: Dict[tuple, tuple] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._servers: List[ThreadingHTTPServer] = []
        self._threads: List[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the API base URL (no trailing slash)."""
        if self._servers:
            return self.api_url
        self._stop.clear()
        roles = [('api', self.port)] + ([('ui', self.ui_port)] if self.separate_ui else [])
        for role, port in roles:
            server = _Server((HOST, port), _Handler)
            server.sim, server.role = self, role
            thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05},
                                      name='noderails-sim-%s' % role, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self.api_url

    def stop(self) -> None:
        self._stop.set()  # wakes requests sleeping in delays
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> 'Simulator':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        if not self._servers:
            raise RuntimeError('simulator not started')
        return 'http://%s:%d' % (HOST, self._servers[0].server_address[1])

    url = api_url

    @property
    def ui_url(self) -> str:
        """Base URL of the hosted checkout (payment_ui_url)."""
        if not self._servers:
            raise RuntimeError('simulator not started')
        return 'http://%s:%d' % (HOST, self._servers[-1].server_address[1])

    def checkout_url(self, session_id: str) -> str:
        return '%s/checkout/%s' % (self.ui_url, session_id)

    def reset(self) -> None:
        """Forget sessions, refunds, requests, deliveries, faults and latency."""
        with self._lock:
            self.requests.clear()
            self.deliveries.clear()
            self.sessions.clear()
            self.refunds.clear()
            self.faults.clear()
            self.latency.clear()
            self.outbox.clear()
            self._idempotency.clear()

    # -- knobs -------------------------------------------------------------------------------

    def fail_next(self, route: str, status: int = 503, count: Optional[int] = 1,
                  message: Optional[str] = None) -> Fault:
        """The next ``count`` requests to ``route`` get HTTP ``status`` (None = until cleared)."""
        return self._add_fault(Fault(route=route, status=status, count=count, message=message))

    def delay_next(self, route: str, seconds: float, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` are answered normally after ``seconds``:
        longer than the client's timeout, this is a timeout for the client."""
        return self._add_fault(Fault(route=route, delay=seconds, count=count))

    def hold_next(self, route: str, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` wait until the returned fault's release(), then
        are carried out and answered normally: a timeout for any client, however loaded the machine,
        and the test decides when NodeRails carries the request out."""
        return self._add_fault(Fault(route=route, count=count, held=threading.Event()))

    def drop_next(self, route: str, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` see the connection closed without answer."""
        return self._add_fault(Fault(route=route, drop=True, count=count))

    def drip_next(self, route: str, interval: float = 1.0, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` are carried out, and their answer (status line,
        headers, body) trickles out one byte every ``interval`` seconds: no single read waits
        long, the whole answer takes minutes."""
        return self._add_fault(Fault(route=route, drip=float(interval), count=count))

    def garble_next(self, route: str, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` are carried out, but answered with their status
        and a body that is not JSON (a broken proxy in between): the caller cannot tell what happened."""
        return self._add_fault(Fault(route=route, garble=True, count=count))

    def accept_but_fail_next(self, route: str, status: int = 502, count: Optional[int] = 1) -> Fault:
        """The next ``count`` requests to ``route`` are carried out (a refund is made, a session
        created), then answered with HTTP ``status``: the caller is told it failed when it did not."""
        return self._add_fault(Fault(route=route, answer_status=status, count=count))

    def set_latency(self, route: str, seconds: float) -> None:
        """Every request to ``route`` (or 'api' / '*') waits ``seconds`` before being handled."""
        _check_route(route)
        with self._lock:
            if seconds:
                self.latency[route] = float(seconds)
            else:
                self.latency.pop(route, None)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.latency.clear()

    def _add_fault(self, fault: Fault) -> Fault:
        _check_route(fault.route)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, route: str) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults:
                if fault.matches(route) and (fault.count is None or fault.count > 0):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count == 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _latency_for(self, route: str) -> float:
        with self._lock:
            return sum(seconds for name, seconds in self.latency.items()
                       if name == route or route in ROUTE_GROUPS.get(name, ()))

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when the simulator is shutting down."""
        return self._stop.wait(seconds) if seconds > 0 else False

    def _wait_for_release(self, held: Optional[threading.Event]) -> bool:
        """Wait until ``held`` is set; True when the simulator shuts down first."""
        while held is not None and not held.wait(0.05):
            if self._stop.is_set():
                return True
        return False

    # -- inspection ----------------------------------------------------------------------------

    def requests_for(self, route: Optional[str] = None, method: Optional[str] = None) -> List[RecordedRequest]:
        return [r for r in list(self.requests)
                if (route is None or r.route == route or r.route in ROUTE_GROUPS.get(route, ()))
                and (method is None or r.method == method.upper())]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.deliveries.clear()

    def session(self, session_id: str) -> dict:
        with self._lock:
            return self._session(session_id).to_dict()

    def refund(self, refund_id: str) -> dict:
        with self._lock:
            if refund_id not in self.refunds:
                raise KeyError(refund_id)
            return self.refunds[refund_id].to_dict()

    def books(self) -> Dict[str, dict]:
        """NodeRails' own ledger: for each captured payment intent, its session, the amount and
        currency captured, its refunds and the amount they take (all but FAILED ones)."""
        with self._lock:
            books = {}
            for session in self.sessions.values():
                if session.status != STATUS_PAID or not session.payment_intent_id:
                    continue
                refunds = [r for r in self.refunds.values() if r.intent_id == session.payment_intent_id]
                refunded = sum((Decimal(r.amount) for r in refunds if r.status != 'FAILED'), Decimal(0))
                amount, currency = self._captured(session)
                books[session.payment_intent_id] = {
                    'sessionId': session.session_id, 'captured': amount, 'currency': currency,
                    'refunded': str(refunded), 'refunds': [r.to_dict() for r in refunds]}
            return books

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no API or checkout request is being handled (one held by a delay finishes
        after its client gave up); False if ``timeout`` passes first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def _request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def _request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def refunds_for(self, session_id: str) -> List[dict]:
        with self._lock:
            return [r.to_dict() for r in self.refunds.values() if r.session_id == session_id]

    # -- state changes -------------------------------------------------------------------------

    def create_session(self, amount: str, currency: str = 'USD', *, reference: str = 'sim',
                       metadata: Optional[dict] = None, app_id: Optional[str] = None) -> dict:
        """Create a session directly (as if a client had called POST /checkout-sessions)."""
        if app_id is None:
            app_id = next(iter(self.credentials)) if self.credentials else 'sim-app'
        with self._lock:
            return self._create(app_id, {'amount': amount, 'currency': currency, 'reference': reference,
                                         'metadata': metadata or {}}).to_dict()

    def mark_paid(self, session_id: str, *, amount: Optional[str] = None, currency: Optional[str] = None,
                  tx_hash: Optional[str] = None, chain_id: int = 1, webhook: bool = False) -> dict:
        """The customer paid: session PAID with a payment intent and tx hash.

        amount/currency change what NodeRails reports for the session afterwards (to
        simulate a mismatch); webhook=True also delivers capture_event_type now."""
        with self._lock:
            session = self._session(session_id)
            self._pay(session, tx_hash=tx_hash, chain_id=chain_id)
            if amount is not None:
                session.reported_amount = amount
            if currency is not None:
                session.reported_currency = currency
            result = session.to_dict()
        if webhook:
            self._emit(self.capture_event_type, session_id)
        return result

    def mark_failed(self, session_id: str, *, webhook: bool = False) -> dict:
        with self._lock:
            session = self._session(session_id)
            if session.status == STATUS_OPEN:
                session.payment_intent_id = session.payment_intent_id or _new_id('pi_')
                session.status = STATUS_FAILED
            result = session.to_dict()
        if webhook:
            self._emit('payment.failed', session_id)
        return result

    def expire(self, session_id: str, *, webhook: bool = False) -> dict:
        with self._lock:
            session = self._session(session_id)
            if session.status == STATUS_OPEN:
                session.status = STATUS_EXPIRED
            result = session.to_dict()
        if webhook:
            self._emit('checkout_session.expired', session_id)
        return result

    def dashboard_refund(self, intent_id: str, amount: str, *, name_refund: bool = True) -> dict:
        """The merchant refunds in NodeRails' dashboard, past pretix: made at once, announced with
        payment.refunded (queued or sent, as _emit() decides). ``name_refund=False`` leaves the
        refundId out of the event, which only the spec's optional fields would carry."""
        with self._lock:
            session = next((s for s in self.sessions.values() if s.payment_intent_id == intent_id), None)
            if session is None:
                raise KeyError(intent_id)
            refund = self._create_refund(session.app_id, intent_id, {'amount': amount, 'reason': 'dashboard'}, None)
            refund.status = 'COMPLETED'
        self._emit('payment.refunded', session.session_id, amount=amount,
                   **({'refund_id': refund.refund_id} if name_refund else {}))
        return refund.to_dict()

    def complete_refund(self, refund_id: str, *, webhook: bool = True, event_type: str = 'payment.refunded'
                        ) -> List[Delivery]:
        """Settle a PENDING refund on-chain; by default NodeRails then sends payment.refunded."""
        with self._lock:
            refund = self.refunds[refund_id]
            refund.status = 'COMPLETED'
        if not webhook:
            return []
        return self._emit(event_type, refund.session_id, refund_id=refund_id)

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise KeyError(session_id)
        self._expire_if_due(session)
        return session

    def _expire_if_due(self, session: Session) -> None:
        if session.status == STATUS_OPEN and session.expires_ts and time.time() > session.expires_ts:
            session.status = STATUS_EXPIRED
            if self.auto_webhooks:
                self._deliver_async('checkout_session.expired', session.session_id)

    def _pay(self, session: Session, *, tx_hash: Optional[str] = None, chain_id: int = 1) -> None:
        if session.status == STATUS_PAID:
            return
        if not self._payable(session):
            raise ApiError(409, 'Checkout session is %s.' % session.status)
        session.status = STATUS_PAID
        session.payment_intent_id = session.payment_intent_id or _new_id('pi_')
        session.tx_hash = tx_hash or '0x' + secrets.token_hex(32)
        session.chain_id = chain_id

    def _payable(self, session: Session) -> bool:
        return session.status == STATUS_OPEN or (self.retry_after_failure and session.status == STATUS_FAILED)

    def _create(self, app_id: str, body: dict) -> Session:
        amount, currency = body.get('amount'), body.get('currency')
        reference, metadata = body.get('reference'), body.get('metadata', {})
        parsed = _parse_amount(amount)
        if parsed is None or parsed <= 0:
            raise ApiError(400, 'amount must be a positive decimal string')
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise ApiError(400, 'currency must be an upper-case ISO 4217 code')
        if not isinstance(reference, str) or not reference or len(reference) > 255:
            raise ApiError(400, 'reference must be a non-empty string of at most 255 characters')
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ApiError(400, 'metadata must be an object of strings')
        session = Session(session_id=_new_id('cs_'), app_id=app_id, amount=amount, currency=currency,
                          reference=reference, metadata=dict(metadata))
        session.expires_ts = time.time() + self.session_ttl_seconds
        session.expires_at = _now_iso(self.session_ttl_seconds)
        self.sessions[session.session_id] = session
        return session

    @staticmethod
    def _captured(session: Session) -> Tuple[str, str]:
        """What NodeRails took for a paid session: what the customer paid (mark_paid's amount and
        currency, when a test made them differ from the session's), in that currency."""
        amount = session.reported_amount if session.reported_amount is not None else session.amount
        currency = session.reported_currency if session.reported_currency is not None else session.currency
        return amount, currency

    def _create_refund(self, app_id: str, intent_id: str, body: dict, key: Optional[str]) -> Refund:
        session = next((s for s in self.sessions.values() if s.payment_intent_id == intent_id), None)
        if session is None or session.app_id != app_id:
            raise ApiError(404, 'Payment intent not found.')
        if session.status != STATUS_PAID:
            raise ApiError(409, 'Payment intent is not captured.')
        amount = _parse_amount(body.get('amount'))
        if amount is None or amount <= 0:
            raise ApiError(400, 'amount must be a positive decimal string')
        reason = body.get('reason', '')
        if not isinstance(reason, str):
            raise ApiError(400, 'reason must be a string')
        refunded = sum((Decimal(r.amount) for r in self.refunds.values()
                        if r.intent_id == intent_id and r.status != 'FAILED'), Decimal(0))
        captured, currency = self._captured(session)
        if refunded + amount > Decimal(captured):
            raise ApiError(400, 'Refund amount exceeds the refundable amount of %s %s.'
                           % (Decimal(captured) - refunded, currency))
        refund = Refund(refund_id=_new_id('rf_'), intent_id=intent_id, session_id=session.session_id,
                        app_id=app_id, amount=body['amount'], currency=currency, reason=reason,
                        status=self.refund_status, idempotency_key=key)
        self.refunds[refund.refund_id] = refund
        return refund

    # -- webhooks ----------------------------------------------------------------------------

    def build_event(self, event_type: str, session_id: Optional[str] = None, *,
                    intent_id: Optional[str] = None, refund_id: Optional[str] = None,
                    amount: Optional[str] = None, currency: Optional[str] = None, status: Optional[str] = None,
                    event_id: Optional[str] = None, data: Optional[dict] = None) -> dict:
        """The JSON document of one event, shaped like NodeRails' (docs/noderails-contract.md)."""
        with self._lock:
            session = self._session(session_id) if session_id else None
            if session is not None and session.payment_intent_id is None and not event_type.startswith('checkout_session.'):
                session.payment_intent_id = _new_id('pi_')  # the customer started paying
            refund = self.refunds.get(refund_id) if refund_id else None
            intent = intent_id or (session.payment_intent_id if session else None)
            verb = event_type.rsplit('.', 1)[-1]
            if refund is not None:
                default_amount, default_currency = refund.amount, refund.currency
            elif session is not None:
                default_amount = session.reported_amount or session.amount
                default_currency = session.reported_currency or session.currency
            else:
                default_amount, default_currency = None, None
            body: Dict[str, Any] = {
                'id': (session.session_id if session else None) if event_type.startswith('checkout_session.') else intent,
                'paymentIntentId': intent,
                'checkoutSessionId': session.session_id if session else None,
                'status': status or EVENT_STATUS.get(verb, verb.upper()),
                'amount': amount if amount is not None else default_amount,
                'currency': currency if currency is not None else default_currency,
                'chainId': (session.chain_id or 1) if session else 1,
                'txHash': (session.tx_hash if session and session.tx_hash else '0x' + secrets.token_hex(32)),
            }
            if refund_id:
                body['refundId'] = refund_id
            if data:
                body.update(data)
            return {'id': event_id or _new_id('evt_'), 'type': event_type, 'createdAt': _now_iso(), 'data': body}

    def _apply_event_state(self, event_type: str, session_id: Optional[str]) -> None:
        if not session_id:
            return
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None or session.status != STATUS_OPEN:
                return
            verb = event_type.rsplit('.', 1)[-1]
            if verb in ('authorized', 'captured', 'completed', 'settled'):
                self._pay(session)
            elif verb in ('failed', 'cancelled'):
                session.status = STATUS_FAILED
            elif verb == 'expired':
                session.status = STATUS_EXPIRED

    def deliver(self, event_type: str, session_id: Optional[str] = None, *, times: Optional[int] = None,
                intent_id: Optional[str] = None, refund_id: Optional[str] = None, amount: Optional[str] = None,
                currency: Optional[str] = None, status: Optional[str] = None, event_id: Optional[str] = None,
                data: Optional[dict] = None, document: Optional[dict] = None, raw_body: Optional[bytes] = None,
                secret: Optional[str] = None, signature_scheme: Optional[str] = None,
                timestamp_unit: Optional[str] = None, timestamp: Optional[str] = None,
                timestamp_offset: float = 0, signature: Optional[str] = None,
                omit_headers: Iterable[str] = (), url: Optional[str] = None, apply_state: bool = True,
                ) -> List[Delivery]:
        """Sign and POST one event ``times`` times (default webhook_duplicates); returns the deliveries.

        The same event (same id, same body) is re-sent on each attempt, each with a fresh
        timestamp and signature like a real redelivery. Overrides for negative tests:
        raw_body (sent as is, still signed), document (the JSON object), secret,
        signature (sent instead of the computed one), timestamp / timestamp_offset
        (seconds, e.g. -600 for a stale one), omit_headers (header names not to send).
        apply_state=True moves the session like NodeRails would (captured -> PAID, ...).
        """
        target = url or self.webhook_url
        if not target:
            raise RuntimeError('no webhook_url configured')
        scheme = signature_scheme or self.signature_scheme
        unit = timestamp_unit or self.timestamp_unit
        if apply_state and raw_body is None and document is None:
            self._apply_event_state(event_type, session_id)
        if raw_body is not None:
            body = raw_body
            event_id = event_id or '(raw)'
        else:
            if document is None:
                document = self.build_event(event_type, session_id, intent_id=intent_id, refund_id=refund_id,
                                            amount=amount, currency=currency, status=status,
                                            event_id=event_id, data=data)
            body = json.dumps(document, separators=(',', ':')).encode('utf-8')
            event_id = str(document.get('id'))
        key = secret if secret is not None else self._secret_for(session_id)
        omitted = {h.lower() for h in omit_headers}
        results = []
        for attempt in range(1, (times if times is not None else self.webhook_duplicates) + 1):
            headers = signing.signed_headers(key, body, payload_scheme=scheme, timestamp_unit=unit,
                                             timestamp=timestamp, offset_seconds=timestamp_offset)
            headers['User-Agent'] = 'NodeRails-Webhooks/1.0 (simulator)'
            if signature is not None:
                headers[signing.SIGNATURE_HEADER] = signature
            headers = {k: v for k, v in headers.items() if k.lower() not in omitted}
            delivery = Delivery(event_id=event_id, type=event_type, attempt=attempt, url=target,
                                request_headers=headers, request_body=body)
            try:
                answer = self.webhook_sender(target, headers, body)
                delivery.status, delivery.response_body = answer[0], answer[1]
                if len(answer) > 2:
                    delivery.response_headers = dict(answer[2])
            except Exception as exc:  # connection refused, timeout: recorded, like NodeRails' log
                delivery.error = '%s: %s' % (type(exc).__name__, exc)
            with self._lock:
                self.deliveries.append(delivery)
            self._log('webhook %s #%d -> %s %s', event_type, attempt, delivery.status, delivery.error or '')
            results.append(delivery)
        return results

    def _emit(self, event_type: str, session_id: Optional[str], **kwargs) -> List[Delivery]:
        """An event the simulator sends of its own accord: now, or into the outbox (queue_webhooks)."""
        if self.queue_webhooks:
            self.enqueue(event_type, session_id, **kwargs)
            return []
        return self.deliver(event_type, session_id, **kwargs)

    # -- the outbox: events decided now, delivered when (and as often as) the test says ---------------

    def enqueue(self, event_type: str, session_id: Optional[str] = None, **event) -> dict:
        """Decide an event now (its id, body and the session's state change, as deliver() does)
        and keep it in the outbox; ``event`` takes build_event()'s keyword arguments."""
        self._apply_event_state(event_type, session_id)
        document = self.build_event(event_type, session_id, **event)
        queued = QueuedWebhook(event_id=document['id'], type=event_type, session_id=session_id, document=document)
        with self._lock:
            self.outbox.append(queued)
        return queued.to_dict()

    def queued(self) -> List[dict]:
        """The outbox, oldest first."""
        with self._lock:
            return [q.to_dict() for q in self.outbox]

    def send_queued(self, event_id: str, *, times: int = 1, secret: Optional[str] = None,
                    keep: Optional[bool] = None) -> List[Delivery]:
        """POST a queued event ``times`` times, in whatever order relative to the others the test
        chooses. As NodeRails retries an event until a delivery is answered 2xx, it stays in the
        outbox when none was; ``keep`` overrides that (True: a retry is still due, e.g. after a
        delivery signed with a wrong ``secret``). KeyError if it is not queued."""
        queued = self._queued(event_id)
        deliveries = self.deliver(queued.type, queued.session_id, document=queued.document, times=times,
                                  secret=secret)
        if keep is None:
            keep = not any(200 <= d.status < 300 for d in deliveries)
        if not keep:
            self.drop_queued(event_id)
        return deliveries

    def drop_queued(self, event_id: str) -> None:
        """NodeRails gives up on a queued event: it is never delivered. KeyError if it is not queued."""
        with self._lock:
            self.outbox.remove(self._queued(event_id))

    def _queued(self, event_id: str) -> QueuedWebhook:
        with self._lock:
            for queued in self.outbox:
                if queued.event_id == event_id:
                    return queued
        raise KeyError(event_id)

    def _secret_for(self, session_id: Optional[str]) -> str:
        with self._lock:
            session = self.sessions.get(session_id) if session_id else None
            if session is not None and session.app_id in self.webhook_secrets:
                return self.webhook_secrets[session.app_id]
        if self.webhook_secret is None:
            raise RuntimeError('no webhook secret configured for this session')
        return self.webhook_secret

    def _deliver_async(self, event_type: str, session_id: str, delay: float = 0.0, **kwargs) -> None:
        if not self.webhook_url:
            return
        if self.queue_webhooks:
            self.enqueue(event_type, session_id, **kwargs)
            return

        def run():
            if self._sleep(delay):
                return
            try:
                self.deliver(event_type, session_id, **kwargs)
            except Exception as exc:
                self._log('webhook %s failed: %s', event_type, exc)
        threading.Thread(target=run, daemon=True, name='noderails-sim-webhook').start()

    def _settle_refund_later(self, refund_id: str) -> None:
        def run():
            if self._sleep(self.refund_settle_seconds):
                return
            try:
                self.complete_refund(refund_id, webhook=bool(self.webhook_url))
            except Exception as exc:
                self._log('refund %s settlement failed: %s', refund_id, exc)
        threading.Thread(target=run, daemon=True, name='noderails-sim-refund').start()

    # -- HTTP API -----------------------------------------------------------------------------

    def _authenticate(self, headers) -> str:
        app_id, api_key = headers.get('x-app-id') or '', headers.get('x-api-key') or ''
        if self.credentials is None:
            ok = bool(app_id and api_key)
        else:
            expected = self.credentials.get(app_id)
            ok = bool(app_id) and expected is not None and secrets.compare_digest(
                expected.encode('utf-8'), api_key.encode('utf-8'))
        if not ok:
            raise ApiError(401, 'Invalid app id or API key.')
        return app_id

    def _idempotent(self, app_id: str, route: str, key: Optional[str], body: dict,
                    action: Callable[[], Tuple[int, dict]]) -> Tuple[int, dict]:
        if not key:
            if self.require_idempotency_key:
                raise ApiError(400, 'Idempotency-Key header is required.')
            return action()
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode('utf-8')).hexdigest()
        slot = (app_id, route, key)
        stored = self._idempotency.get(slot)
        if stored is not None:
            if stored[0] != fingerprint:
                raise ApiError(422, 'Idempotency-Key was already used with different parameters.')
            return stored[1], copy.deepcopy(stored[2])
        status, response = action()
        self._idempotency[slot] = (fingerprint, status, copy.deepcopy(response))
        return status, response

    def handle_api(self, method: str, path: str, headers, body: bytes) -> Tuple[int, dict]:
        parts = [unquote(p) for p in path.strip('/').split('/')]
        if method == 'POST' and parts == ['checkout-sessions']:
            app_id = self._authenticate(headers)
            doc = _json_object(body)
            key = headers.get('Idempotency-Key')

            def create():
                session = self._create(app_id, doc)
                return 201, {'sessionId': session.session_id, 'status': session.status,
                             'expiresAt': session.expires_at}
            with self._lock:
                return self._idempotent(app_id, ROUTE_CREATE_SESSION, key, doc, create)
        if method == 'GET' and len(parts) == 3 and parts[:2] == ['checkout-sessions', 'public']:
            with self._lock:
                try:
                    return 200, self._session(parts[2]).public()
                except KeyError:
                    raise ApiError(404, 'Checkout session not found.')
        if method == 'POST' and len(parts) == 4 and parts[:2] == ['payments', 'intents'] and parts[3] == 'refund':
            app_id = self._authenticate(headers)
            doc = _json_object(body)
            key = headers.get('Idempotency-Key')

            def refund():
                created = self._create_refund(app_id, parts[2], doc, key)
                if created.status == 'PENDING' and self.auto_webhooks:
                    self._settle_refund_later(created.refund_id)
                return 201, created.response()
            with self._lock:
                status, response = self._idempotent(app_id, ROUTE_REFUND, key, doc, refund)
                if response.get('refundId') in self.refunds:
                    response = self.refunds[response['refundId']].response()  # current status
                return status, response
        raise ApiError(404, 'Not found.')

    def checkout_action(self, session_id: str, action: str) -> Tuple[int, dict]:
        with self._lock:
            try:
                session = self._session(session_id)
            except KeyError:
                raise ApiError(404, 'Checkout session not found.')
            before = self._payable(session)
            if action == 'pay':
                self._pay(session)
            elif session.status == STATUS_OPEN:
                session.payment_intent_id = session.payment_intent_id or _new_id('pi_')
                session.status = STATUS_FAILED
            elif session.status == STATUS_PAID:
                raise ApiError(409, 'Checkout session is already paid.')
            public = session.public()
        if self.auto_webhooks and before:
            self._deliver_async(self.capture_event_type if action == 'pay' else 'payment.failed', session_id)
        return 200, public

    def checkout_page(self, session_id: str) -> str:
        with self._lock:
            try:
                session = self._session(session_id)
            except KeyError:
                raise ApiError(404, 'Checkout session not found.')
            values = {
                'session_id': escape(session.session_id),
                'action_base': escape('/checkout/' + session.session_id),
                'post_message': '1' if self.post_message else '0',
                'retry': '1' if self.retry_after_failure else '0',
                'amount': escape(session.amount), 'currency': escape(session.currency),
                'reference': escape(session.reference), 'status': escape(session.status),
                'disabled': '' if self._payable(session) else 'disabled',
            }
        return Template((ASSETS / 'checkout.html').read_text('utf-8')).substitute(values)

    # -- control API (/_sim/) ---------------------------------------------------------------------

    def handle_control(self, method: str, path: str, headers, body: bytes) -> Tuple[int, Any]:
        if self.control_token is not None and not secrets.compare_digest(
                (headers.get('x-sim-token') or '').encode(), self.control_token.encode()):
            raise ApiError(401, 'x-sim-token required.')
        parts = [unquote(p) for p in path.strip('/').split('/')][1:]
        doc = _json_object(body) if body else {}
        if parts == ['health']:
            return 200, {'ok': True, 'apiUrl': self.api_url, 'uiUrl': self.ui_url}
        if parts == ['requests']:
            if method == 'DELETE':
                self.clear_requests()
                return 200, {'ok': True}
            return 200, [r.to_dict() for r in list(self.requests)]
        if parts == ['deliveries']:
            return 200, [d.to_dict() for d in list(self.deliveries)]
        if parts == ['reset'] and method == 'POST':
            self.reset()
            return 200, {'ok': True}
        if parts == ['sessions']:
            if method == 'POST':
                return 201, self.create_session(doc.get('amount', '10.00'), doc.get('currency', 'USD'),
                                                reference=doc.get('reference', 'sim'),
                                                metadata=doc.get('metadata'), app_id=doc.get('appId'))
            with self._lock:
                return 200, [s.to_dict() for s in self.sessions.values()]
        if len(parts) >= 2 and parts[0] == 'sessions':
            try:
                if len(parts) == 2:
                    return 200, self.session(parts[1])
                if parts[2] == 'pay' and method == 'POST':
                    return 200, self.mark_paid(parts[1], amount=doc.get('amount'), currency=doc.get('currency'),
                                               tx_hash=doc.get('txHash'), chain_id=doc.get('chainId', 1),
                                               webhook=bool(doc.get('webhook')))
                if parts[2] == 'fail' and method == 'POST':
                    return 200, self.mark_failed(parts[1], webhook=bool(doc.get('webhook')))
                if parts[2] == 'expire' and method == 'POST':
                    return 200, self.expire(parts[1], webhook=bool(doc.get('webhook')))
            except KeyError:
                raise ApiError(404, 'Checkout session not found.')
        if parts == ['refunds']:
            with self._lock:
                return 200, [r.to_dict() for r in self.refunds.values()]
        if len(parts) == 3 and parts[0] == 'refunds' and parts[2] == 'complete' and method == 'POST':
            if parts[1] not in self.refunds:
                raise ApiError(404, 'Refund not found.')
            deliveries = self.complete_refund(parts[1], webhook=doc.get('webhook', True))
            return 200, {'refund': self.refund(parts[1]), 'deliveries': [d.to_dict() for d in deliveries]}
        if parts == ['deliver'] and method == 'POST':
            kwargs = _deliver_kwargs(doc)
            try:
                deliveries = self.deliver(doc.get('type', self.capture_event_type), doc.get('sessionId'), **kwargs)
            except KeyError:
                raise ApiError(404, 'Checkout session not found.')
            return 200, [d.to_dict() for d in deliveries]
        if parts == ['books']:
            return 200, self.books()
        if parts == ['outbox']:
            if method == 'POST':
                try:
                    return 201, self.enqueue(doc.get('type', self.capture_event_type), doc.get('sessionId'),
                                             refund_id=doc.get('refundId'), amount=doc.get('amount'),
                                             currency=doc.get('currency'), status=doc.get('status'))
                except KeyError:
                    raise ApiError(404, 'Checkout session not found.')
            return 200, self.queued()
        if len(parts) == 2 and parts[0] == 'outbox' and method == 'DELETE':
            try:
                self.drop_queued(parts[1])
            except KeyError:
                raise ApiError(404, 'Not in the outbox.')
            return 200, {'ok': True}
        if len(parts) == 3 and parts[0] == 'outbox' and parts[2] == 'send' and method == 'POST':
            try:
                deliveries = self.send_queued(parts[1], times=int(doc.get('times', 1)), secret=doc.get('secret'),
                                              keep=doc.get('keep'))
            except KeyError:
                raise ApiError(404, 'Not in the outbox.')
            return 200, [d.to_dict() for d in deliveries]
        if parts == ['faults']:
            if method == 'DELETE':
                self.clear_faults()
                return 200, {'ok': True}
            if method == 'POST':
                fault = self._add_fault(Fault(route=doc.get('route', 'api'), status=doc.get('status'),
                                              delay=float(doc.get('delay', 0)), drop=bool(doc.get('drop')),
                                              count=doc.get('count', 1), message=doc.get('message'),
                                              drip=float(doc.get('drip', 0)), garble=bool(doc.get('garble')),
                                              answer_status=doc.get('answerStatus')))
                return 201, fault.__dict__
            with self._lock:
                return 200, {'faults': [f.__dict__ for f in self.faults], 'latency': dict(self.latency)}
        if parts == ['latency'] and method == 'POST':
            self.set_latency(doc.get('route', 'api'), float(doc.get('seconds', 0)))
            return 200, dict(self.latency)
        if parts == ['config']:
            if method == 'POST':
                self.configure(**{_snake(k): v for k, v in doc.items()})
            return 200, self.config()
        raise ApiError(404, 'Unknown control endpoint.')

    CONFIGURABLE = ('webhook_url', 'signature_scheme', 'timestamp_unit', 'webhook_duplicates', 'post_message',
                    'retry_after_failure', 'refund_status', 'auto_webhooks', 'refund_settle_seconds', 'session_ttl_seconds',
                    'require_idempotency_key', 'capture_event_type', 'queue_webhooks')

    def configure(self, **values) -> None:
        unknown = set(values) - set(self.CONFIGURABLE)
        if unknown:
            raise ApiError(400, 'Unknown settings: %s' % ', '.join(sorted(unknown)))
        if values.get('signature_scheme', self.signature_scheme) not in signing.SCHEMES:
            raise ApiError(400, 'signature_scheme must be one of %s' % (signing.SCHEMES,))
        if values.get('timestamp_unit', self.timestamp_unit) not in signing.UNITS:
            raise ApiError(400, 'timestamp_unit must be one of %s' % (signing.UNITS,))
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)

    def config(self) -> dict:
        return {key: getattr(self, key) for key in self.CONFIGURABLE}

    def _log(self, fmt: str, *args) -> None:
        if self.verbose:
            print('[noderails-sim] ' + fmt % args, flush=True)


def _check_route(route: str) -> None:
    if route not in ROUTES and route not in ROUTE_GROUPS:
        raise ValueError('unknown route %r (one of %s, api, *)' % (route, ', '.join(sorted(ROUTES))))


def _snake(name: str) -> str:
    return ''.join('_' + c.lower() if c.isupper() else c for c in name)


def _deliver_kwargs(doc: dict) -> dict:
    names = {'times', 'intentId', 'refundId', 'amount', 'currency', 'status', 'eventId', 'data', 'document',
             'secret', 'signatureScheme', 'timestampUnit', 'timestamp', 'timestampOffset', 'signature',
             'omitHeaders', 'url', 'applyState'}
    kwargs = {_snake(k): v for k, v in doc.items() if k in names}
    if 'rawBody' in doc:
        kwargs['raw_body'] = doc['rawBody'].encode('utf-8')
    return kwargs


def _json_object(body: bytes) -> dict:
    try:
        doc = json.loads(body.decode('utf-8')) if body else {}
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, 'Request body is not valid JSON.')
    if not isinstance(doc, dict):
        raise ApiError(400, 'Request body must be a JSON object.')
    return doc


def classify(method: str, path: str) -> str:
    parts = path.strip('/').split('/')
    if parts[0] == '_sim':
        return ROUTE_CONTROL
    if parts == ['checkout-sessions']:
        return ROUTE_CREATE_SESSION
    if len(parts) == 3 and parts[:2] == ['checkout-sessions', 'public']:
        return ROUTE_GET_SESSION
    if len(parts) == 4 and parts[:2] == ['payments', 'intents'] and parts[3] == 'refund':
        return ROUTE_REFUND
    if len(parts) == 2 and parts[0] == 'checkout-assets':
        return ROUTE_CHECKOUT_ASSET
    if len(parts) == 2 and parts[0] == 'checkout':
        return ROUTE_CHECKOUT_PAGE
    if len(parts) == 3 and parts[0] == 'checkout' and parts[2] in ('pay', 'fail'):
        return ROUTE_CHECKOUT_ACTION
    return ROUTE_UNKNOWN


# -- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator
    role: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = 'NodeRailsSimulator/0.1'

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_DELETE(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_PATCH(self):
        self._handle()

    def _handle(self):
        sim = self.server.sim
        path = urlsplit(self.path).path
        route = classify(self.command, path)
        try:
            length = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES:
            self._json(413, {'message': 'Request body too large.'})
            return
        body = self.rfile.read(length) if length else b''
        self._fault = None
        if route == ROUTE_CONTROL:
            self._respond(sim, route, path, body)
            return
        sim._request_started()
        try:
            self._respond(sim, route, path, body)
        finally:
            sim._request_finished()

    def _respond(self, sim: Simulator, route: str, path: str, body: bytes) -> None:
        if route != ROUTE_CONTROL:
            sim.requests.append(RecordedRequest(
                method=self.command, path=self.path, headers=dict(self.headers.items()), body=body,
                route=route, server=self.server.role, time=time.time()))
            if sim._sleep(sim._latency_for(route)):
                return
            fault = self._fault = sim._take_fault(route)
            if fault is not None:
                if sim._sleep(fault.delay) or sim._wait_for_release(fault.held):
                    return
                if fault.drop:
                    self.close_connection = True
                    return
                if fault.status is not None:
                    self._json(fault.status, {'message': fault.message or 'Simulated HTTP %d.' % fault.status,
                                              'statusCode': fault.status})
                    return
        try:
            self._dispatch(sim, route, path, body)
        except ApiError as exc:
            self._json(exc.status, {'message': exc.message, 'statusCode': exc.status})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a simulator bug should be a visible 500, not a hang
            self._json(500, {'message': 'Simulator error: %s: %s' % (type(exc).__name__, exc), 'statusCode': 500})

    def _dispatch(self, sim: Simulator, route: str, path: str, body: bytes) -> None:
        if route == ROUTE_CONTROL:
            status, payload = sim.handle_control(self.command, path, self.headers, body)
            self._json(status, payload)
        elif route in API_ROUTES:
            status, payload = sim.handle_api(self.command, path, self.headers, body)
            self._json(status, payload)
        elif route == ROUTE_CHECKOUT_PAGE and self.command == 'GET':
            page = sim.checkout_page(unquote(path.strip('/').split('/')[1]))
            self._send(200, page.encode('utf-8'), 'text/html; charset=utf-8',
                       {'Content-Security-Policy': 'frame-ancestors *', 'Cache-Control': 'no-store'})
        elif route == ROUTE_CHECKOUT_ACTION and self.command == 'POST':
            _, session_id, action = path.strip('/').split('/')
            status, payload = sim.checkout_action(unquote(session_id), action)
            self._json(status, payload)
        elif route == ROUTE_CHECKOUT_ASSET and self.command == 'GET':
            name = path.strip('/').split('/')[1]
            types = {'checkout.js': 'application/javascript; charset=utf-8', 'checkout.css': 'text/css; charset=utf-8'}
            if name not in types:
                raise ApiError(404, 'Not found.')
            self._send(200, (ASSETS / name).read_bytes(), types[name], {'Cache-Control': 'no-store'})
        else:
            raise ApiError(404 if self.command in ('GET', 'POST') else 405, 'Not found.')

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode('utf-8'), 'application/json')

    def _send(self, status: int, body: bytes, content_type: str, extra: Optional[dict] = None) -> None:
        fault = self._fault
        if fault is not None and fault.answer_status is not None:
            status = fault.answer_status
            body = json.dumps({'message': 'Simulated HTTP %d.' % status, 'statusCode': status}).encode('utf-8')
            content_type = 'application/json'
        if fault is not None and fault.garble:
            body, content_type = b'<html><body>502 Bad Gateway</body></html>', 'text/html'
        if fault is not None and fault.drip:
            self._drip(status, body, content_type, extra, fault.drip)
            return
        try:
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _drip(self, status: int, body: bytes, content_type: str, extra: Optional[dict], interval: float) -> None:
        head = ['HTTP/1.1 %d %s' % (status, self.responses.get(status, ('',))[0]), 'Content-Type: ' + content_type,
                'Content-Length: %d' % len(body)] + ['%s: %s' % item for item in (extra or {}).items()]
        self.close_connection = True
        for byte in ('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') + body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up, as it should
            if self.server.sim._sleep(interval):
                return  # the simulator is stopping

    def log_message(self, fmt, *args):
        if self.server.sim.verbose:
            super().log_message(fmt, *args)
