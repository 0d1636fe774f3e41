import json
import logging
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Q
from django.dispatch import receiver
from django.template.loader import get_template
from django.urls import resolve
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django_scopes import scopes_disabled
from pretix.base.models import OrderPayment, OrderRefund
from pretix.base.services.locking import LockTimeoutException
from pretix.base.settings import GlobalSettingsObject
from pretix.base.signals import (
    logentry_display,
    order_placed,
    periodic_task,
    register_notification_types,
    register_payment_providers,
)
from pretix.control.signals import order_search_filter_q
from pretix.helpers.periodic import minimum_interval
from pretix.presale.signals import order_info, order_meta_from_request, process_response

from . import compat, notifications, settlement, unclaimed, webhook_health
from .client import NodeRailsError, NodeRailsUnavailable
from .conf import API_ORIGIN, IDENTIFIER, MODULE, PAYMENT_UI_ORIGIN
from .models import CartCheckout, NodeRailsReference, ProcessedWebhookEvent
from .payment import NodeRailsPayment, currency_places, get_checkout_state, origin_of

logger = logging.getLogger(__name__)

# Pending payments are re-checked for this long (NodeRails retries webhooks for ~1 day).
RECONCILE_MAX_AGE = timedelta(days=3)
# A younger payment is the webhook's to settle; asking NodeRails about every fresh payment
# would only double its traffic.
RECONCILE_MIN_AGE = timedelta(minutes=5)
# Payments asked about per run. Each run goes on where the last one stopped (a cursor kept in
# pretix's global settings), so every open payment is asked about within ceil(open / BATCH) runs.
RECONCILE_BATCH = 50
RECONCILE_CURSOR = MODULE + '_reconcile_cursor'
# Refunds with an unknown outcome asked about per run (each at growing intervals, settlement.py):
# a long NodeRails outage with many of them does not turn one run into hundreds of calls.
REFUND_RECONCILE_BATCH = 20
# pretix runs periodic tasks every few minutes; the reconciliation asks NodeRails at most every
# RECONCILE_INTERVAL_MINUTES, and waits longer after NodeRails was unavailable.
RECONCILE_INTERVAL_MINUTES = 10
RECONCILE_BACKOFF_MINUTES = 30
# Dedupe records only need to outlive NodeRails' retry schedule.
PROCESSED_EVENT_RETENTION = timedelta(days=30)

# Payments whose transaction the order page shows.
PAID_STATES = (OrderPayment.PAYMENT_STATE_CONFIRMED, OrderPayment.PAYMENT_STATE_REFUNDED)
# Shorter search terms cannot be one of NodeRails' ids or a transaction hash; they are not looked up.
MIN_SEARCH_ID_LENGTH = 8

# The order's meta_info key carrying the cart's checkout session from Place order to order_placed.
ORDER_META_KEY = MODULE + ':checkout_session'

# Only pages that can show the embedded checkout need the extra CSP sources.
_CHECKOUT_URL_NAMES = ('event.checkout', 'event.order.pay.confirm')


@receiver(register_payment_providers, dispatch_uid='payment_' + MODULE)
def register_payment_provider(sender, **kwargs):
    return NodeRailsPayment


@receiver(process_response, dispatch_uid='payment_%s_csp' % MODULE)
def add_checkout_csp(sender, request=None, response=None, **kwargs):
    try:
        url_name = resolve(request.path_info).url_name
    except Exception:  # an unresolvable path has no checkout on it
        return response
    if url_name not in _CHECKOUT_URL_NAMES:
        return response
    provider = NodeRailsPayment(sender)
    if not provider.settings.get('_enabled', as_type=bool):
        return response
    ui = _unique([PAYMENT_UI_ORIGIN, origin_of(provider.payment_ui_url)])
    api = _unique([API_ORIGIN, origin_of(provider.api_base_url)])
    compat.add_to_response_csp(response, {
        'frame-src': ui,
        'img-src': ui,
        'connect-src': _unique(ui + api),
    })
    return response


# -- the order is placed: its payment gets the cart's checkout at once ----------------------------------
#
# The browser may never come back from Place order (tab closed while pretix's "placing your
# order" page waits, network gone): binding the session when the order is created, in the same
# transaction, lets the capture webhook and the reconciliation settle the payment, and keeps the
# unclaimed-checkout refund away from it.


@receiver(order_meta_from_request, dispatch_uid='payment_%s_order_meta' % MODULE)
def remember_checkout_for_order(sender, request, **kwargs):
    """Place order: hand the cart's checkout session to the order being created."""
    state = get_checkout_state(request, sender)
    if state is None or state.get('payment') is not None or not _chose_this_method(request):
        return {}
    return {ORDER_META_KEY: state['session_id']}


def _chose_this_method(request) -> bool:
    from pretix.presale.views.cart import cart_session
    return any(p.get('provider') == IDENTIFIER for p in cart_session(request).get('payments', []))


@receiver(order_placed, dispatch_uid='payment_%s_order_placed' % MODULE)
def bind_checkout_to_new_order(sender, order, **kwargs):
    session_id = order.meta_info_data.get(ORDER_META_KEY)
    if not session_id:
        return
    payment = order.payments.filter(provider=IDENTIFIER, state=OrderPayment.PAYMENT_STATE_CREATED).first()
    if payment is None:
        return
    try:
        lost_to = settlement.bind_checkout(session_id, payment)
    except DatabaseError:
        # Rolled back to bind_checkout's savepoint: the order is still placed, and execute_payment
        # binds the session when the customer's browser arrives.
        logger.exception('Checkout %s could not be bound to new order %s', session_id, order.code)
        return
    if lost_to is not None:
        # Its refund has begun: execute_payment tells the customer, if they come back.
        logger.info('Checkout %s not bound to new order %s: %s', session_id, order.code, lost_to)


# -- what the customer sees on the order page ------------------------------------------------------------


@receiver(order_info, dispatch_uid='payment_%s_order_info' % MODULE)
def show_transactions(sender, order, request=None, **kwargs):
    """pretix's order page shows no details of a paid payment; this shows each crypto payment's
    network, amount and transaction."""
    payments = order.payments.filter(provider=IDENTIFIER, state__in=PAID_STATES).order_by('local_id')
    provider = NodeRailsPayment(sender)
    shown = [provider.payment_presale_render(p) for p in payments if p.info_data.get('tx_hash')]
    if not shown:
        return ''
    return get_template('%s/order_info.html' % MODULE).render({'payments': shown, 'request': request})


# -- what the organiser sees ---------------------------------------------------------------------------


@receiver(order_search_filter_q, dispatch_uid='payment_%s_order_search' % MODULE)
def find_orders_by_noderails_id(sender, query, **kwargs):
    """pretix's order searches (an event's, the one across events, the API's): a NodeRails session
    or payment intent id, or a transaction hash, finds its order. Sent for every search, even where
    this plugin is not active; the search's own queryset limits it to what the user may see."""
    query = (query or '').strip()
    if len(query) < MIN_SEARCH_ID_LENGTH or any(c.isspace() for c in query):
        return Q(pk__in=[])
    referenced = NodeRailsReference.objects.filter(reference=query)
    tx_hash = '"tx_hash": %s' % json.dumps(query)
    paid_on_chain = OrderPayment.objects.filter(provider=IDENTIFIER, info__icontains=tx_hash)
    if sender is not None:  # an event's search: only its payments are scanned
        referenced = referenced.filter(order__event=sender)
        paid_on_chain = paid_on_chain.filter(order__event=sender)
    return Q(pk__in=referenced.values('order_id')) | Q(pk__in=paid_on_chain.values('order_id'))


@receiver(register_notification_types, dispatch_uid='payment_%s_money_notifications' % MODULE)
def register_money_notifications(sender, **kwargs):
    """Every case a person must look at, with what to do (notifications.py)."""
    return notifications.notification_types(sender)


_ORDER_LOG_TEXTS = {
    settlement.LOG_FAILED_AFTER_CONFIRMATION: _(
        'NodeRails reported the confirmed payment {local_id} as failed ({status}). The order was not changed; '
        'please check the payment in the NodeRails dashboard.'),
    settlement.LOG_CONFIRMED_NOT_PAID: _(
        'The NodeRails payment {local_id} of {amount} arrived, but the order could not be marked as paid: '
        '{message}'),
    settlement.LOG_REFUND_UNCLEAR: _(
        'NodeRails gave no clear answer to the refund {local_id} of {amount} ({reason}). It may have been '
        'carried out, so it stays in transit until NodeRails reports it; please do not refund this amount again.'),
    settlement.LOG_REFUND_REJECTED: _(
        'NodeRails rejected the refund {local_id} of {amount} when asked again ({message}); it was not carried out.'),
    settlement.LOG_MONEY_HELD: _(
        'The NodeRails payment {local_id} failed after the customer paid ({problem}): NodeRails holds {amount} '
        '{currency} for it. Please refund it with the button on the payment, or in the NodeRails dashboard.'),
    settlement.LOG_REFUND_STALLED: _(
        'NodeRails has given no final answer to the refund {local_id} of {amount} for a day ({message}). It is '
        'still asked about; please check it in the NodeRails dashboard and do not refund this amount again.'),
    settlement.LOG_CAPTURE_UNREPORTED: _(
        'The customer approved the NodeRails payment {local_id} of {amount} {currency} more than 12 hours ago, and its capture '
        'was never reported. Please check it in the NodeRails dashboard: mark it as paid if it was captured.'),
    settlement.LOG_PAID_TWICE: _(
        'The NodeRails payment {local_id} of {amount} arrived for an order that was already paid: the customer '
        'has paid twice. Please refund this payment: Order → Refund.'),
    settlement.LOG_HELD_REFUND: _(
        'Refund of the {amount} {currency} NodeRails held for the failed payment {local_id}: {status} {message}'),
}


@receiver(logentry_display, dispatch_uid='payment_%s_logentry' % MODULE)
def render_log_entry(sender, logentry, **kwargs):
    texts = dict(_ORDER_LOG_TEXTS, **{settlement.LOG_ACTION: None, unclaimed.LOG_REFUNDED: None,
                                      unclaimed.LOG_REFUND_FAILED: None, unclaimed.LOG_UNANSWERED: None})
    if logentry.action_type not in texts:
        return None
    try:
        data = json.loads(logentry.data or '{}')
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if logentry.action_type in _ORDER_LOG_TEXTS:
        values = {k: data.get(k) or '?' for k in ('local_id', 'status', 'amount', 'message', 'reason', 'problem',
                                                  'currency')}
        return _ORDER_LOG_TEXTS[logentry.action_type].format(**values)
    if logentry.action_type != settlement.LOG_ACTION:
        return _render_unclaimed(logentry.action_type, data)
    problem = data.get('problem')
    event_type = data.get('type')
    if problem:
        return _('NodeRails payment not accepted ({problem}).').format(problem=problem)
    if event_type:
        return _('NodeRails reported an event: {event}').format(event=event_type)
    return _('NodeRails event')


def _render_unclaimed(action_type, data):
    values = {k: data.get(k) or '?' for k in ('amount', 'currency', 'session_id', 'error')}
    if action_type == unclaimed.LOG_REFUNDED:
        return _('A NodeRails payment of {amount} {currency} for which no order was placed (checkout '
                 '{session_id}) has been refunded to the customer automatically.').format(**values)
    if action_type == unclaimed.LOG_UNANSWERED:
        return _('NodeRails has not said for days whether the checkout {session_id} of {amount} {currency} was '
                 'paid ({error}). It is kept and still asked about; please check it in the NodeRails '
                 'dashboard.').format(**values)
    return _('A NodeRails payment of {amount} {currency} for which no order was placed (checkout {session_id}) '
             'could not be refunded automatically ({error}). Please refund it in the NodeRails '
             'dashboard.').format(**values)


# -- webhook health (webhook_health.py) -------------------------------------------------------------------


@receiver(register_notification_types, dispatch_uid='payment_%s_webhook_health_notifications' % MODULE)
def register_webhook_health_notifications(sender, **kwargs):
    return webhook_health.notification_types(sender)


@receiver(logentry_display, dispatch_uid='payment_%s_webhook_health_logentry' % MODULE)
def render_webhook_health_log_entry(sender, logentry, **kwargs):
    if logentry.action_type != webhook_health.LOG_REFUSED:
        return None
    data = logentry.parsed_data
    return webhook_health.refused_text(data if isinstance(data, dict) else {})


# -- the periodic task -----------------------------------------------------------------------------------


@receiver(periodic_task, dispatch_uid='payment_%s_periodic' % MODULE)
@scopes_disabled()
@minimum_interval(minutes_after_success=RECONCILE_INTERVAL_MINUTES, minutes_after_error=RECONCILE_BACKOFF_MINUTES)
def reconcile_pending_payments(sender, **kwargs):
    """Settle payments left open (customer placed the order before the payment was confirmed,
    paid from the order page and closed the tab, NodeRails was unreachable, or the worker died
    while asking) in case their webhook never arrives; ask again about refunds NodeRails gave
    no clear answer to; then refund checkouts that were paid but never became an order
    (unclaimed.py)."""
    # First, so that a NodeRails outage (which ends the run below) does not postpone it.
    ProcessedWebhookEvent.objects.filter(processed__lt=now() - PROCESSED_EVENT_RETENTION).delete()
    unclaimed.delete_expired_bookkeeping()
    _report_stalled_refunds()
    _reconcile_open_payments()
    _reopen_abandoned_refunds()
    _ask_about_refunds()
    _ask_about_started_checkouts()
    _refund_unclaimed_checkouts()


def _reconcile_open_payments():
    # "created" as well: a payment bound to its session when its order was placed, or started
    # from the order page, holds its session from the start and may have been paid meanwhile.
    unsettled = OrderPayment.objects.filter(
        provider=IDENTIFIER, state__in=settlement.OPEN_PAYMENT_STATES,
        created__range=(now() - RECONCILE_MAX_AGE, now() - RECONCILE_MIN_AGE),
        # Only payments that got as far as a NodeRails session; abandoned ones would fill the batch.
        info__contains='"session_id"',
    ).select_related('order', 'order__event').order_by('pk')
    cursor = GlobalSettingsObject().settings.get(RECONCILE_CURSOR, as_type=int, default=0)
    batch = list(unsettled.filter(pk__gt=cursor)[:RECONCILE_BATCH])
    if len(batch) < RECONCILE_BATCH:  # past the newest: go on with the oldest
        batch += list(unsettled.filter(pk__lte=cursor)[:RECONCILE_BATCH - len(batch)])
    visited = None
    try:
        for payment in batch:
            _reconcile(payment)
            visited = payment.pk
    finally:
        if visited is not None:
            GlobalSettingsObject().settings.set(RECONCILE_CURSOR, visited)


def _reconcile(payment):
    try:
        NodeRailsPayment(payment.order.event).reconcile(payment)
    except NodeRailsUnavailable:
        # NodeRails is down or slow: the rest of the batch would only wait for the same
        # timeout. Raising makes minimum_interval back off for RECONCILE_BACKOFF_MINUTES.
        logger.warning('NodeRails unavailable; reconciliation postponed at %s', payment.full_id)
        raise
    except NodeRailsError as exc:
        logger.info('NodeRails reconciliation of %s postponed: %s', payment.full_id, exc)
    except LockTimeoutException:
        logger.info('Order of %s locked; reconciliation retried next run', payment.full_id)
    except Exception:  # one broken payment must not stop the others
        logger.exception('NodeRails reconciliation of %s failed', payment.full_id)


# What a refund's info holds while NodeRails has given no final answer (settlement.is_unclear), as a
# cheap first filter in the database.
_WITHOUT_FINAL_ANSWER = Q(info__contains=settlement.REFUND_STATUS_UNKNOWN) | Q(info__contains='"not_final"')


def _unclear_refunds():
    return OrderRefund.objects.filter(
        _WITHOUT_FINAL_ANSWER, provider=IDENTIFIER, state=OrderRefund.REFUND_STATE_TRANSIT,
    ).select_related('order', 'order__event', 'payment').order_by('pk')


def _refunds_to_ask_about():
    """Refunds without a clear answer, and open refunds a refund event could not be matched to
    without asking NodeRails (settlement.ask_again)."""
    return OrderRefund.objects.filter(
        _WITHOUT_FINAL_ANSWER | Q(info__contains='"recheck"'), provider=IDENTIFIER, state__in=settlement.OPEN_REFUND_STATES,
    ).select_related('order', 'order__event', 'payment').order_by('pk')


def _report_stalled_refunds():
    # Before NodeRails is asked anything: an outage, which ends the run, is what stalls them.
    for refund in _unclear_refunds().filter(created__lt=now() - settlement.REFUND_STALL_AGE):
        settlement.report_stalled(refund)


def _reopen_abandoned_refunds():
    """Refunds claimed for NodeRails (their Idempotency-Key recorded) and still "created" long after:
    the process sending them died mid-call (a celery worker or app server killed by a deploy). NodeRails
    may have made them, so they are left in transit like an unclear answer and asked about again below."""
    abandoned = OrderRefund.objects.filter(
        provider=IDENTIFIER, state=OrderRefund.REFUND_STATE_CREATED, info__contains='"idempotency_key"',
        created__lte=now() - RECONCILE_MIN_AGE,
    ).order_by('pk')[:REFUND_RECONCILE_BATCH]
    for refund in abandoned:
        settlement.leave_refund_open(refund, 'the process sending it stopped before NodeRails answered')


def _ask_about_refunds():
    candidates = _refunds_to_ask_about().filter(created__lte=now() - RECONCILE_MIN_AGE)
    due = [r for r in candidates if settlement.needs_asking(r) and settlement.refund_due(r)][:REFUND_RECONCILE_BATCH]
    for refund in due:
        try:
            NodeRailsPayment(refund.order.event).resend_refund(refund)
        except NodeRailsUnavailable as exc:
            settlement.refund_unanswered(refund, exc.message)
            logger.warning('NodeRails unavailable; refund %s asked about again later', refund.full_id)
            raise
        except NodeRailsError as exc:
            settlement.refund_unanswered(refund, exc.message)
            logger.info('NodeRails refund %s still without a clear answer: %s', refund.full_id, exc)
        except Exception:  # one broken refund must not stop the others
            logger.exception('Reconciliation of NodeRails refund %s failed', refund.full_id)


def _ask_about_started_checkouts():
    """Paid checkouts are found without their webhook (unclaimed.ask_about_started)."""
    for pk in unclaimed.started_to_ask():
        checkout = CartCheckout.objects.select_related('event').get(pk=pk)
        client = NodeRailsPayment(checkout.event).client(checkout.testmode)
        try:
            unclaimed.ask_about_started(checkout, client)
        except NodeRailsUnavailable:
            logger.warning('NodeRails unavailable; checkout %s asked about again later', checkout.session_id)
            raise
        except Exception:  # one broken checkout must not stop the others
            logger.exception('Asking NodeRails about checkout %s failed', checkout.session_id)


def _refund_unclaimed_checkouts():
    for pk in unclaimed.due_checkouts():
        checkout = unclaimed.begin_refund(pk)
        if checkout is None:
            continue  # Place order claimed it first, or another run is refunding it
        client = NodeRailsPayment(checkout.event).client(checkout.testmode)
        try:
            unclaimed.refund(checkout, client, currency_places(checkout.currency))
        except NodeRailsUnavailable:
            # As above: stop, back off, and retry this checkout (same Idempotency-Key) next run.
            logger.warning('NodeRails unavailable; refund of unclaimed checkout %s postponed', checkout.session_id)
            raise
        except NodeRailsError:
            pass  # recorded on the checkout by unclaimed.refund; retried next run
        except Exception:  # one broken checkout must not stop the others
            logger.exception('Refund of unclaimed NodeRails checkout %s failed', checkout.session_id)


def _unique(origins):
    seen = []
    for origin in origins:
        if origin and origin not in seen:
            seen.append(origin)
    return seen
