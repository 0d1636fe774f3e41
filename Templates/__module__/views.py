"""Webhook receiver and the status endpoint polled by the confirm page.

The webhook is the path that confirms payments when the customer's browser is gone, so
it must be idempotent (NodeRails delivers up to 6 times), safe against replays, and must
never confirm an amount or currency other than the order's.
"""

import logging
import time
from decimal import Decimal

from django.contrib import messages
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from pretix.base.models import OrderPayment
from pretix.base.services.locking import LockTimeoutException
from pretix.control.permissions import event_permission_required
from pretix.helpers.database import OF_SELF

from . import compat, events, settlement, unclaimed, webhook as signing, webhook_health
from .client import KNOWN_STATUSES, NodeRailsError
from .conf import (
    IDENTIFIER,
    MODULE,
    POLL_INTERVAL_SECONDS,
    SIGNATURE_PAYLOAD,
    TIMESTAMP_UNIT,
    TOLERANCE_SECONDS,
)
from .models import CartCheckout, NodeRailsReference, ProcessedWebhookEvent
from .payment import NodeRailsPayment, get_checkout_state

logger = logging.getLogger(__name__)

# NodeRails events are a few hundred bytes; anything near this is not one of them.
MAX_BODY_BYTES = 64 * 1024
# A checkout page polls every POLL_INTERVAL_SECONDS; allow a few tabs, not a flood.
STATUS_RATE_WINDOW_SECONDS = 60
STATUS_RATE_LIMIT = max(30, 4 * STATUS_RATE_WINDOW_SECONDS // max(1, POLL_INTERVAL_SECONDS))
# Upstream answers are shared between tabs and polls for just under one interval.
STATUS_CACHE_SECONDS = max(1, POLL_INTERVAL_SECONDS - 1)

# pretix stops waiting for its own locks after a few seconds (LOCK_ACQUISITION_TIMEOUT). Row
# locks taken here give up too, so a delivery stuck behind another transaction is answered
# 503 well inside NodeRails' 15 s timeout, its work rolled back, and NodeRails retries it.
LOCK_WAIT_SECONDS = 5
RETRY_AFTER_SECONDS = 10
# SQLSTATE of PostgreSQL's lock_timeout.
PG_LOCK_NOT_AVAILABLE = '55P03'

# Without redis or memcached, pretix's cache is a DummyCache that keeps nothing: the status
# cache and rate limit fall back to this worker process's memory (per process, not shared).
_PROCESS_CACHE = LocMemCache(MODULE + ':status', {'OPTIONS': {'MAX_ENTRIES': 10000}})


def _text(message: str, status: int = 200) -> HttpResponse:
    return HttpResponse(message, status=status, content_type='text/plain; charset=utf-8')


# -- webhook ------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def webhook(request, *args, **kwargs):
    body = _read_body(request)
    if body is None:
        return _text('Payload too large', 413)
    provider = NodeRailsPayment(request.event)
    verified, failure = _verify(request, provider, body)
    if failure:
        return failure
    try:
        event = events.parse_event(body)
    except events.PayloadError as exc:
        return _text('Malformed event: %s' % exc, 400)
    ref = _find_reference(event)
    mode = _mode_of(request.event, ref, event)
    if mode is not None and mode not in verified:
        # A test-app signature must never settle a live payment, nor the reverse.
        logger.warning('NodeRails %s event %s not signed with the secret of its payment\'s mode',
                       event.type, event.event_id)
        return _text('Mode mismatch, ignored')
    webhook_health.record_verified(request.event, _likely_mode(request.event, verified) if mode is None else mode,
                                   event.type)
    if event.action == events.ACTION_IGNORE:
        return _text('Event type ignored')
    if ref is None or ref.payment_id is None:
        # No payment yet: a checkout paid before (or without) Place order.
        response = _locked(_apply_unclaimed, request.event, event, verified)
        if response is not None:
            return response
        ref = _find_reference(event)  # Place order bound it while we waited for its lock
        if ref is None or ref.payment_id is None:
            return _text('Unknown payment, ignored')
    if ref.order.event_id != request.event.pk:
        return _text('Payment of another event, ignored')
    if bool(ref.order.testmode) not in verified:
        logger.warning('NodeRails %s event %s signed in the wrong mode for %s', event.type, event.event_id, ref.order.code)
        return _text('Mode mismatch, ignored')
    return _locked(_apply, request.event, event, ref)


def _mode_of(pretix_event, ref, event):
    """Test mode (True/False) of this event's payment or cart checkout the webhook is about; None
    when there is none.

    It decides whose secret must have signed the webhook, not the event's current mode: test
    orders still settling when the event goes live keep settling with test-signed webhooks.
    """
    if ref is not None:
        return bool(ref.order.testmode) if ref.order.event_id == pretix_event.pk else None
    checkout = unclaimed.find_checkout(event.checkout_session_id, event.payment_intent_id)
    return checkout.testmode if checkout is not None and checkout.event_id == pretix_event.pk else None


def _likely_mode(pretix_event, modes):
    """The mode a delivery about nothing we know is counted under on the settings page."""
    return pretix_event.testmode if pretix_event.testmode in modes else next(iter(modes))


def _locked(handler, *args):
    """Run handler in one transaction with bounded lock waits; 503 when a lock is not granted."""
    try:
        with transaction.atomic():
            _limit_lock_waits()
            return handler(*args)
    except (LockTimeoutException, OperationalError) as exc:
        if isinstance(exc, OperationalError) and not _is_lock_timeout(exc):
            raise
        # Rolled back, dedupe row included, so NodeRails' retry is processed afresh.
        return _retry_later('Lock timeout, please try again.')


def _retry_later(message: str) -> HttpResponse:
    """503 with Retry-After: NodeRails redelivers, where a 4xx would make it give up on the event."""
    response = _text(message, 503)
    response['Retry-After'] = str(RETRY_AFTER_SECONDS)
    return response


def _limit_lock_waits() -> None:
    """Bound this transaction's lock waits (PostgreSQL; sqlite serialises writers anyway)."""
    if connection.vendor == 'postgresql':
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '%ds'" % LOCK_WAIT_SECONDS)


def _is_lock_timeout(exc) -> bool:
    cause = exc.__cause__
    # psycopg2 names the SQLSTATE pgcode, psycopg 3 sqlstate.
    return PG_LOCK_NOT_AVAILABLE in (getattr(cause, 'pgcode', None), getattr(cause, 'sqlstate', None))


def _read_body(request):
    """The raw body, or None when it exceeds MAX_BODY_BYTES."""
    try:
        declared = int(request.META.get('CONTENT_LENGTH') or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return None if len(body) > MAX_BODY_BYTES else body


def _verify(request, provider, body):
    """(the modes whose secret signed the body, None) or (None, error response).

    Every configured secret is tried: which mode's secret has to match is decided by the payment
    the event is about (webhook()), and the test and live secrets may be the same.
    """
    secrets = [(mode, provider.webhook_secret(mode)) for mode in (False, True)]
    secrets = [(mode, secret) for mode, secret in secrets if secret]
    if not secrets:
        # NodeRails keeps retrying until the organiser has saved the secret.
        return None, _retry_later('Webhook secret not configured')
    signature = request.headers.get(signing.SIGNATURE_HEADER)
    timestamp = request.headers.get(signing.TIMESTAMP_HEADER)
    verdicts = [(mode, signing.verify_signature(
        secret, body, signature, timestamp, time.time(),
        payload_scheme=SIGNATURE_PAYLOAD, timestamp_unit=TIMESTAMP_UNIT, tolerance_seconds=TOLERANCE_SECONDS,
    )) for mode, secret in secrets]
    verified = frozenset(mode for mode, verdict in verdicts if verdict.accepted)
    if verified:
        return verified, None
    mode, reason = _refusal(request.event, body, verdicts)
    logger.info('Rejected NodeRails webhook for %s: %s', request.event.slug, reason)
    webhook_health.record_refused(request.event, mode, reason)
    return None, _text('Invalid signature', 400)


def _refusal(pretix_event, body, verdicts):
    """(mode, reason) a refused delivery is counted under.

    A stale or future timestamp is only reported once a secret matched, so that secret's mode and
    reason say the most. Otherwise the mode of the payment the (unauthenticated) body names, else
    the event's current mode: only a count on the settings page depends on it.
    """
    for mode, verdict in verdicts:
        if verdict.reason in (signing.REASON_STALE_TIMESTAMP, signing.REASON_FUTURE_TIMESTAMP):
            return mode, verdict.reason
    try:
        event = events.parse_event(body)
        mode = _mode_of(pretix_event, _find_reference(event), event)
    except events.PayloadError:
        mode = None
    return (pretix_event.testmode if mode is None else mode), verdicts[0][1].reason


def _find_reference(event):
    """The reference for the most specific id in the event (intent before session); for an event naming
    only an intent not bound yet, the session of the cart's checkout that recorded it."""
    references = event.references
    if event.payment_intent_id and not event.checkout_session_id:
        references += tuple(CartCheckout.objects.filter(payment_intent_id=event.payment_intent_id)
                            .values_list('session_id', flat=True)[:1])
    refs = {r.reference: r for r in NodeRailsReference.objects.filter(
        reference__in=references).select_related('order')}
    for reference in references:
        if reference in refs:
            return refs[reference]
    return None


def _apply(pretix_event, event, ref):
    if not _claim(pretix_event, event):
        return _text('Duplicate event, already processed')
    payment = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=ref.payment_id)
    if event.action == events.ACTION_REFUND:
        applied = settlement.apply_refund_event(payment, event)
        if applied == settlement.REFUND_NOT_ATTRIBUTABLE:
            # Not processed, and so not on the order's log: NodeRails' redelivery is, once the
            # reconciliation has learnt the id.
            ProcessedWebhookEvent.objects.filter(event_id=event.event_id, pretix_event=pretix_event).delete()
            return _retry_later('Refund may be one whose NodeRails id is not known yet; asking NodeRails first')
        payment.order.log_action(settlement.LOG_ACTION, data=_log_data(event))
        return _text(applied)
    payment.order.log_action(settlement.LOG_ACTION, data=_log_data(event))
    if event.action == events.ACTION_APPROVAL:
        # [webhook] confirm_on = ["captured"]: the approval is on the order's log, the capture confirms.
        # Its intent is bound to the payment, so a capture that names only the intent finds it.
        settlement.settle(payment, settlement.Report.from_event(event, settlement.OPEN))
        return _text('Approval logged; waiting for the capture')
    outcome = settlement.PAID if event.action == events.ACTION_CONFIRM else settlement.FAILED
    settled = settlement.settle(payment, settlement.Report.from_event(event, outcome))
    # Authentic events are answered 200 whatever their effect: redelivering them would not change it.
    return _text(_ANSWERS.get(settled.code) or 'Not confirmed: %s' % settled.code)


_ANSWERS = {
    settlement.CONFIRMED: 'Payment confirmed',
    settlement.CONFIRMED_NOT_PAID: 'Payment confirmed; the order could not be marked as paid',
    settlement.CONFIRMED_CANCELED: 'Payment confirmed; its order is canceled, the organiser is notified',
    settlement.CONFIRMED_PAID_TWICE: 'Payment confirmed; its order was already paid, the organiser is notified',
    settlement.ALREADY_CONFIRMED: 'Payment already confirmed',
    settlement.NOT_OPEN: 'Payment not open, event ignored',
    settlement.FAILED_NOW: 'Payment failed',
    settlement.FAILED_AFTER_CONFIRMATION: 'Failure of a confirmed payment logged for the organiser',
}


def _apply_unclaimed(pretix_event, event, verified_modes):
    """Record a capture of a cart's checkout that no payment is bound to (unclaimed.py).

    None when Place order claimed the checkout meanwhile: the caller then finds its payment.
    """
    checkout = unclaimed.lock_checkout(event.checkout_session_id, event.payment_intent_id)
    if checkout is None:
        # Not ours: another pretix instance, or a session started before this version.
        return _text('Unknown payment, ignored')
    if checkout.event_id != pretix_event.pk:
        return _text('Payment of another event, ignored')
    if checkout.testmode not in verified_modes:
        logger.warning('NodeRails %s event %s signed in the wrong mode for checkout %s',
                       event.type, event.event_id, checkout.session_id)
        return _text('Mode mismatch, ignored')
    if checkout.state == unclaimed.STATE_CLAIMED:
        return None
    if event.action == events.ACTION_APPROVAL:
        # Both ids, in every confirm_on setting: a capture naming only the intent finds the checkout.
        unclaimed.record_intent(checkout, event.payment_intent_id)
        return _text('Approval of a checkout without order recorded; waiting for the capture')
    if event.action not in (events.ACTION_CONFIRM, events.ACTION_REFUND):
        return _text('Checkout without order, event ignored')
    # In this transaction: a redelivery either sees the dedupe row or redoes it all.
    if not _claim(pretix_event, event):
        return _text('Duplicate event, already processed')
    if event.action == events.ACTION_REFUND:
        settled = unclaimed.record_refund_webhook(checkout, event.refund_id)
        return _text('Refund of unclaimed payment recorded' if settled else 'Refund of unclaimed payment ignored')
    if unclaimed.record_capture(checkout, event.amount, event.currency, event.payment_intent_id):
        return _text('Payment without order recorded; refunded unless the order is placed')
    return _text('Payment without order already recorded')


def _claim(pretix_event, event) -> bool:
    """Record the event id; False if it was processed before."""
    try:
        with transaction.atomic():
            ProcessedWebhookEvent.objects.create(
                event_id=event.event_id, pretix_event=pretix_event, event_type=event.type)
    except IntegrityError:
        return False
    return True


def _log_data(event) -> dict:
    return {
        'event_id': event.event_id, 'type': event.type, 'status': event.status,
        'amount': str(event.amount) if event.amount is not None else None, 'currency': event.currency,
        'payment_intent_id': event.payment_intent_id, 'checkout_session_id': event.checkout_session_id,
        'refund_id': event.refund_id, 'chain_id': event.chain_id, 'tx_hash': event.tx_hash,
    }


# -- status -------------------------------------------------------------------------------


@never_cache
@require_GET
def status(request, *args, **kwargs):
    state = get_checkout_state(request, request.event)
    if state is None:
        return JsonResponse({'paid': False, 'status': 'NO_SESSION'}, status=404)
    if _over_rate_limit(request):
        response = JsonResponse({'paid': False, 'status': 'RATE_LIMITED'}, status=429)
        response['Retry-After'] = str(STATUS_RATE_WINDOW_SECONDS)
        return response
    if settlement.is_closed(state['session_id']):
        # pretix canceled its payment: nothing is left to wait for, and NodeRails is not asked.
        return JsonResponse({'paid': False, 'status': 'CANCELED'}, status=404)
    answer = _session_status(request.event, state)
    code = 503 if answer['status'] == 'UNAVAILABLE' else 200
    return JsonResponse(answer, status=code)


def status_cache():
    """pretix's cache when it has a real one (redis or memcached), else this process's memory."""
    shared = caches['default']
    return _PROCESS_CACHE if isinstance(shared, DummyCache) else shared


def _session_status(pretix_event, state) -> dict:
    cache = status_cache()
    key = '%s:status:%s' % (MODULE, state['session_id'])
    cached = cache.get(key)
    if cached is not None:
        return cached
    answer = _fetch_status(NodeRailsPayment(pretix_event), state)
    # Failures are cached too: during an outage, polls must not multiply upstream calls.
    cache.set(key, answer, STATUS_CACHE_SECONDS)
    return answer


def _fetch_status(provider, state) -> dict:
    try:
        public = provider.client(bool(state.get('testmode'))).get_public_session(state['session_id'])
    except NodeRailsError:
        return {'paid': False, 'status': 'UNAVAILABLE'}
    status_text = public.status if public.status in KNOWN_STATUSES else 'UNKNOWN'
    paid = public.is_paid and _matches_state(public, state)
    if public.is_paid and not paid:
        status_text = 'AMOUNT_MISMATCH'
    return {'paid': paid, 'status': status_text}


def _matches_state(public, state) -> bool:
    """The Place-order button is only enabled for the amount the customer is about to order."""
    try:
        return public.amount == Decimal(state['amount']) and (public.currency or '') == state['currency'].upper()
    except (KeyError, ArithmeticError, ValueError, TypeError, AttributeError):
        return False


def _over_rate_limit(request) -> bool:
    """Fixed-window counter per browser session, in status_cache()."""
    cache = status_cache()
    session_key = request.session.session_key or request.META.get('REMOTE_ADDR', '')
    key = '%s:status-rate:%s:%d' % (MODULE, session_key, int(time.time() // STATUS_RATE_WINDOW_SECONDS))
    if cache.add(key, 1, STATUS_RATE_WINDOW_SECONDS * 2):
        return False
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, STATUS_RATE_WINDOW_SECONDS * 2)
        return False
    return count > STATUS_RATE_LIMIT


# -- the organiser's one-click refund of money held for a failed payment -----------------------------


@require_POST
@event_permission_required(compat.ORDERS_WRITE_PERMISSION)
def refund_held(request, *args, **kwargs):
    payment = OrderPayment.objects.filter(
        pk=kwargs['payment'], order__event=request.event, provider=IDENTIFIER).select_related('order').first()
    if payment is None:
        raise Http404()
    outcome = NodeRailsPayment(request.event).refund_held(payment)
    # Another status than these is NodeRails accepting the refund in a word of its own.
    messages.add_message(request, *_HELD_REFUND_MESSAGES.get(outcome, _HELD_REFUND_MESSAGES['PENDING']))
    return redirect('control:event.order', organizer=request.event.organizer.slug, event=request.event.slug,
                    code=payment.order.code)


_HELD_REFUND_MESSAGES = {
    None: (messages.INFO, _('There is no money held for this payment left to refund.')),
    'COMPLETED': (messages.SUCCESS, _('The money held for this payment has been refunded.')),
    'PENDING': (messages.SUCCESS, _('NodeRails accepted the refund of the money held for this payment; it is '
                                    'being sent back.')),
    'REJECTED': (messages.ERROR, _('NodeRails refused to refund the money held for this payment. Please check '
                                   'the payment in the NodeRails dashboard.')),
    settlement.REFUND_STATUS_UNKNOWN: (messages.WARNING, _(
        'NodeRails gave no clear answer to the refund. Please try again later: trying again never refunds twice.')),
}
