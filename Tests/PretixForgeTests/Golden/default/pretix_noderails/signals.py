import json
import logging
from datetime import timedelta

from django.dispatch import receiver
from django.urls import resolve
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django_scopes import scopes_disabled
from pretix.base.middleware import add_to_response_csp
from pretix.base.models import OrderPayment
from pretix.base.signals import (
    logentry_display,
    periodic_task,
    register_payment_providers,
)
from pretix.helpers.periodic import minimum_interval
from pretix.presale.signals import process_response

from . import unclaimed
from .client import NodeRailsError, NodeRailsUnavailable
from .models import ProcessedWebhookEvent
from .payment import (
    IDENTIFIER,
    LOG_ACTION,
    NodeRailsPayment,
    currency_places,
    origin_of,
)

logger = logging.getLogger(__name__)

# Rendered origins, always allowed; an organiser's per-event override is added on top.
PAYMENT_UI_ORIGIN = 'https://pay.noderails.com'
API_ORIGIN = 'https://api.noderails.com'

# Pending payments are re-checked for this long (NodeRails retries webhooks for ~1 day).
RECONCILE_MAX_AGE = timedelta(days=3)
# A younger payment is the webhook's to settle; asking NodeRails about every fresh payment
# would only double its traffic.
RECONCILE_MIN_AGE = timedelta(minutes=5)
RECONCILE_BATCH = 50
# pretix runs periodic tasks every few minutes; the reconciliation asks NodeRails at most every
# RECONCILE_INTERVAL_MINUTES, and waits longer after NodeRails was unavailable.
RECONCILE_INTERVAL_MINUTES = 10
RECONCILE_BACKOFF_MINUTES = 30
# Dedupe records only need to outlive NodeRails' retry schedule.
PROCESSED_EVENT_RETENTION = timedelta(days=30)

# Only pages that can show the embedded checkout need the extra CSP sources.
_CHECKOUT_URL_NAMES = ('event.checkout', 'event.order.pay.confirm')


@receiver(register_payment_providers, dispatch_uid='payment_pretix_noderails')
def register_payment_provider(sender, **kwargs):
    return NodeRailsPayment


@receiver(process_response, dispatch_uid='payment_pretix_noderails_csp')
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
    add_to_response_csp(response, {
        'frame-src': ui,
        'img-src': ui,
        'connect-src': _unique(ui + api),
    })
    return response


@receiver(logentry_display, dispatch_uid='payment_pretix_noderails_logentry')
def render_log_entry(sender, logentry, **kwargs):
    if logentry.action_type not in (LOG_ACTION, unclaimed.LOG_REFUNDED, unclaimed.LOG_REFUND_FAILED):
        return None
    try:
        data = json.loads(logentry.data or '{}')
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if logentry.action_type != LOG_ACTION:
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
    return _('A NodeRails payment of {amount} {currency} for which no order was placed (checkout {session_id}) '
             'could not be refunded automatically ({error}). Please refund it in the NodeRails '
             'dashboard.').format(**values)


@receiver(periodic_task, dispatch_uid='payment_pretix_noderails_periodic')
@scopes_disabled()
@minimum_interval(minutes_after_success=RECONCILE_INTERVAL_MINUTES, minutes_after_error=RECONCILE_BACKOFF_MINUTES)
def reconcile_pending_payments(sender, **kwargs):
    """Settle payments left open (customer placed the order before the payment was confirmed,
    paid from the order page and closed the tab, NodeRails was unreachable, or the worker died
    while asking) in case their webhook never arrives; then refund checkouts that were paid
    but never became an order (unclaimed.py)."""
    # First, so that a NodeRails outage (which ends the run below) does not postpone it.
    ProcessedWebhookEvent.objects.filter(processed__lt=now() - PROCESSED_EVENT_RETENTION).delete()
    unclaimed.delete_expired_bookkeeping()
    _reconcile_open_payments()
    _refund_unclaimed_checkouts()


def _reconcile_open_payments():
    # "created" as well: a payment started from the order page holds its session from the
    # start, and its customer may have paid and closed the tab without confirming.
    unsettled = OrderPayment.objects.filter(
        provider=IDENTIFIER, state__in=(OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING),
        created__range=(now() - RECONCILE_MAX_AGE, now() - RECONCILE_MIN_AGE),
        # Only payments that got as far as a NodeRails session; abandoned ones would fill the batch.
        info__contains='"session_id"',
    ).select_related('order', 'order__event').order_by('created')[:RECONCILE_BATCH]
    for payment in unsettled:
        try:
            NodeRailsPayment(payment.order.event).reconcile(payment)
        except NodeRailsUnavailable:
            # NodeRails is down or slow: the rest of the batch would only wait for the same
            # timeout. Raising makes minimum_interval back off for RECONCILE_BACKOFF_MINUTES.
            logger.warning('NodeRails unavailable; reconciliation postponed at %s', payment.full_id)
            raise
        except NodeRailsError as exc:
            logger.info('NodeRails reconciliation of %s postponed: %s', payment.full_id, exc)
        except Exception:  # one broken payment must not stop the others
            logger.exception('NodeRails reconciliation of %s failed', payment.full_id)


def _refund_unclaimed_checkouts():
    for pk in unclaimed.due_checkouts():
        checkout = unclaimed.begin_refund(pk)
        if checkout is None:
            continue  # Place order claimed it first
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
