"""Paid NodeRails checkouts that never became a pretix order.

In the normal checkout the NodeRails session is created before the order exists, and the
customer pays inside the confirm page. Only "Place order" creates the order and binds the
session to its payment. A customer who pays and then closes the tab (or whose browser or
cart gives up) has paid NodeRails without an order. Such money must not be kept silently:

1. checkout_prepare remembers every session it starts for a cart (CartCheckout, "started").
   NodeRails' webhooks carry neither the session's reference nor its metadata, so this row
   is what proves that a paid session was started by this pretix, for this event.
2. A capture webhook for such a session, not bound to any payment, marks it "open" and
   sets the time its refund becomes due.
3. Place order claims it ("claimed") and goes on as usual. The periodic task refunds an open
   one once it is due ("refunding", then "refunded"), with an Idempotency-Key derived from
   the payment intent, and logs that on the event for the organiser.

Claim and refund decide under the checkout's row lock, so exactly one of them wins. Once the
task has decided to refund, the checkout can no longer be claimed, even when NodeRails is
unreachable: a request that timed out may have been carried out, and confirming the order
on top of a refund would lose the organiser the money. The order is created with the claim
already made (signals.bind_checkout_to_new_order), so a customer whose browser never comes
back after Place order is never refunded.

Webhooks are not relied on: the task also asks NodeRails about every checkout still "started"
(ask_about_started). A paid one becomes "open" as if its capture webhook had arrived; an expired one
is marked so, and only such a record is ever deleted; one NodeRails keeps answering for without a
final word is asked again at growing intervals and reported on the event after a day or two.

A run of the task leases the checkout it refunds (refund_lease_until): another run, on another
worker or overlapping in time, leaves it alone until the lease is over, so only one of them asks
NodeRails. A run that died mid-call leaves a lease that simply runs out.
"""

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Optional

from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now
from pretix.helpers.database import OF_SELF

from .client import (
    STATUS_EXPIRED,
    NodeRailsError,
    NodeRailsRequestRejected,
    NodeRailsUnavailable,
)
from .conf import HTTP_TIMEOUT_SECONDS, MODULE
from .models import CartCheckout

logger = logging.getLogger(__name__)
# Logged on the event (there is no order to log on); signals.render_log_entry shows them.
LOG_REFUNDED = 'pretix.plugins.' + MODULE + '.unclaimed.refunded'
LOG_REFUND_FAILED = 'pretix.plugins.' + MODULE + '.unclaimed.refund_failed'
LOG_UNANSWERED = 'pretix.plugins.' + MODULE + '.unclaimed.unanswered'

STATE_STARTED = 'started'      # session created for a cart; not paid as far as we know
STATE_OPEN = 'open'            # paid, not claimed by any pretix payment yet
STATE_CLAIMED = 'claimed'      # bound to a pretix payment by Place order
STATE_REFUNDING = 'refunding'  # the task decided to refund; NodeRails has not confirmed it yet
STATE_REFUNDED = 'refunded'    # NodeRails accepted the refund
STATE_FAILED = 'failed'        # NodeRails refused the refund: left to the organiser
STATE_EXPIRED = 'expired'      # NodeRails said the session expired unpaid
CLAIMABLE_STATES = (STATE_STARTED, STATE_OPEN, STATE_CLAIMED)
# A cart may keep using its session in these: not paid yet, or paid and waiting for Place order.
REUSABLE_STATES = (STATE_STARTED, STATE_OPEN)
DUE_STATES = (STATE_OPEN, STATE_REFUNDING)

# How long after the capture webhook a customer may still place the order, on top of the
# event's cart reservation time (pretix's reservation_time, 30 minutes by default). The
# webhook often arrives before the customer clicks Place order, and the cart may be
# extended up to the reservation time at every step; the margin covers a slow wallet
# confirmation, a customer who comes back to an expired but still orderable cart, and the
# task's own interval. A refund costs the customer a second payment, so err on waiting.
GRACE_MARGIN = timedelta(hours=1)
# Refunds per task run; the rest waits for the next run.
REFUND_BATCH = 20
# How long a run owns a checkout it is refunding. Far longer than its NodeRails calls can take
# (two, each cut off at HTTP_TIMEOUT_SECONDS), so a live run never loses it to another.
REFUND_LEASE = timedelta(seconds=max(300, 10 * HTTP_TIMEOUT_SECONDS))
# Expired sessions and claimed ones are only bookkeeping; refunded and failed ones stay as the
# record of money sent back (or not). A started one is never deleted: it may hold money.
CHECKOUT_RETENTION = timedelta(days=30)

# Asking NodeRails about started checkouts (ask_about_started). A younger checkout is still being
# paid, and its capture webhook usually arrives first.
ASK_MIN_AGE = timedelta(minutes=5)
# Checkouts asked about per run, oldest first: one GET each, bounded by HTTP_TIMEOUT_SECONDS, so a
# run stays short even when NodeRails is slow; the rest wait for the next run.
ASK_BATCH = 50
# The pause after an answer that is not final (OPEN, FAILED: the customer may still pay in the
# iframe) doubles from ASK_FIRST_INTERVAL up to ASK_MAX_INTERVAL, so a checkout left open for days
# costs a few calls a day, while one paid in its first minutes is noticed within minutes.
ASK_FIRST_INTERVAL = timedelta(minutes=5)
ASK_MAX_INTERVAL = timedelta(hours=6)
# NodeRails' checkout sessions expire within hours; one still without a final answer after this
# long is reported on the event (once) and kept, never deleted.
UNANSWERED_REPORT_AGE = timedelta(days=2)


def grace_period(reservation_minutes) -> timedelta:
    """How long an unclaimed paid session waits for Place order before it is refunded."""
    try:
        minutes = max(0, int(reservation_minutes or 0))
    except (TypeError, ValueError):
        minutes = 0
    return timedelta(minutes=minutes) + GRACE_MARGIN


def checkout_refund_key(intent_id: str) -> str:
    # Derived from the intent, not random: a retried run sends the same key and NodeRails
    # answers with the same refund instead of refunding twice.
    return '%s:unclaimed-refund:%s' % (MODULE, intent_id)


def remember_checkout(event, session_id: str, amount: Decimal, testmode: bool) -> Optional[str]:
    """Record a session started for a cart. None when it is new; else the state of the record made
    before: NodeRails gives the same cart and amount the same session back (the Idempotency-Key is
    derived from them), which may be in use still (REUSABLE_STATES) or not."""
    checkout, created = CartCheckout.objects.get_or_create(session_id=session_id, defaults={
        'event': event, 'testmode': bool(testmode), 'amount': amount, 'currency': event.currency})
    return None if created else checkout.state


def lock_checkout(session_id: Optional[str], intent_id: Optional[str]) -> Optional[CartCheckout]:
    """The checkout a webhook is about, row-locked; by session, else by its recorded intent."""
    return _checkout(CartCheckout.objects.select_for_update(of=OF_SELF).select_related('event'), session_id, intent_id)


def find_checkout(session_id: Optional[str], intent_id: Optional[str]) -> Optional[CartCheckout]:
    """The checkout a webhook is about, unlocked (to tell its mode before anything is decided)."""
    return _checkout(CartCheckout.objects.all(), session_id, intent_id)


def _checkout(queryset, session_id: Optional[str], intent_id: Optional[str]) -> Optional[CartCheckout]:
    if session_id:
        found = queryset.filter(session_id=session_id).first()
        if found is not None:
            return found
    if intent_id:
        return queryset.filter(payment_intent_id=intent_id).first()
    return None


def record_capture(checkout: CartCheckout, amount: Optional[Decimal], currency: Optional[str],
                   intent_id: Optional[str]) -> bool:
    """Mark a locked, started checkout as paid and unclaimed; False if it was past that."""
    if checkout.state != STATE_STARTED:
        return False  # the other spelling of the capture, or claimed/refunded meanwhile
    checkout.state = STATE_OPEN
    checkout.paid = now()
    checkout.refund_after = checkout.paid + grace_period(checkout.event.settings.reservation_time)
    checkout.payment_intent_id = intent_id or checkout.payment_intent_id
    # Refund what was captured, which is what NodeRails will allow.
    if amount is not None and amount > 0:
        checkout.amount = amount
    if currency:
        checkout.currency = currency
    checkout.save(update_fields=['state', 'paid', 'refund_after', 'payment_intent_id', 'amount', 'currency'])
    return True


def record_refund_webhook(checkout: CartCheckout, refund_id: Optional[str]) -> bool:
    """A refund webhook settles a refund whose request timed out; False if nothing to settle."""
    if checkout.state != STATE_REFUNDING:
        return False
    _finish(checkout, STATE_REFUNDED, refund_id=refund_id or '')
    return True


def claim_checkout(session_id: str, event) -> Optional[str]:
    """Claim the cart's checkout for Place order; None if claimed, else the state that forbids it.

    Call inside the transaction that binds the session to the payment, so the claim and
    the binding commit together.
    """
    checkout = CartCheckout.objects.select_for_update(of=OF_SELF).filter(
        session_id=session_id, event=event).first()
    if checkout is None:
        return None  # started on the order page (bound from the start) or before this version
    if checkout.state not in CLAIMABLE_STATES:
        return checkout.state
    if checkout.state != STATE_CLAIMED:
        checkout.state = STATE_CLAIMED
        checkout.save(update_fields=['state'])
    return None


def due_checkouts() -> list:
    """Ids of unclaimed paid checkouts whose grace period is over, oldest first."""
    return list(CartCheckout.objects.filter(state__in=DUE_STATES, refund_after__lte=now())
                .order_by('refund_after').values_list('pk', flat=True)[:REFUND_BATCH])


def begin_refund(pk: int) -> Optional[CartCheckout]:
    """Decide to refund and take the lease, under the row lock Place order takes too; None if it
    was claimed first, or another run holds the lease.

    Committed before NodeRails is asked, so no lock is held during the call.
    """
    with transaction.atomic():
        checkout = CartCheckout.objects.select_for_update(of=OF_SELF).select_related(
            'event', 'event__organizer').get(pk=pk)
        if checkout.state not in DUE_STATES:
            return None
        if checkout.refund_lease_until is not None and checkout.refund_lease_until > now():
            return None
        checkout.state = STATE_REFUNDING
        checkout.refund_attempts += 1
        checkout.refund_lease_until = now() + REFUND_LEASE
        checkout.save(update_fields=['state', 'refund_attempts', 'refund_lease_until'])
    return checkout


def refund(checkout: CartCheckout, client, currency_places: int) -> str:
    """Ask NodeRails to refund a checkout taken by begin_refund; record and log the outcome.

    A refusal (4xx) is final and left to the organiser. Any other NodeRails error is
    recorded and raised; the checkout stays "refunding" and the next run retries it with
    the same Idempotency-Key.
    """
    try:
        intent_id = checkout.payment_intent_id or _intent_of_session(checkout, client)
        result = client.refund_payment_intent(
            intent_id, amount=checkout.amount, currency_places=currency_places,
            reason='pretix: paid checkout without an order (%s/%s)' % (
                checkout.event.organizer.slug, checkout.event.slug),
            idempotency_key=checkout_refund_key(intent_id),
        )
    except NodeRailsRequestRejected as exc:
        _finish(checkout, STATE_FAILED, error=exc.message)
        return STATE_FAILED
    except NodeRailsError as exc:
        _note_error(checkout, exc.message)
        raise
    _finish(checkout, STATE_REFUNDED, refund_id=result.refund_id or '')
    return STATE_REFUNDED


def delete_expired_bookkeeping() -> None:
    CartCheckout.objects.filter(state__in=(STATE_EXPIRED, STATE_CLAIMED),
                                created__lt=now() - CHECKOUT_RETENTION).delete()


def record_intent(checkout: CartCheckout, intent_id: Optional[str]) -> None:
    """An approval names the session and its intent: remembered, so that a capture naming only the
    intent finds this checkout whatever confirm_on says."""
    if intent_id and checkout.payment_intent_id != intent_id and checkout.state == STATE_STARTED:
        checkout.payment_intent_id = intent_id
        checkout.save(update_fields=['payment_intent_id'])


# -- started checkouts: asked about, not waited for ------------------------------------------------


def started_to_ask() -> list:
    """Ids of started checkouts due to be asked about, oldest first (ASK_BATCH at most)."""
    moment = now()
    return list(CartCheckout.objects.filter(state=STATE_STARTED, created__lte=moment - ASK_MIN_AGE)
                .filter(Q(next_check__isnull=True) | Q(next_check__lte=moment))
                .order_by('created', 'pk').values_list('pk', flat=True)[:ASK_BATCH])


def ask_about_started(checkout: CartCheckout, client) -> str:
    """Ask NodeRails' public session about a started checkout and act on the answer: paid makes it
    "open" (refunded after the grace period unless claimed), expired marks it never paid, anything else
    asks again later. Raises NodeRailsUnavailable (after noting it) so that the run backs off."""
    try:
        public = client.get_public_session(checkout.session_id)
    except NodeRailsUnavailable as exc:
        _ask_later(checkout, exc.message)
        raise
    except NodeRailsError as exc:  # refused (unknown to NodeRails) or unreadable: no answer
        _ask_later(checkout, exc.message)
        return 'unanswered'
    with transaction.atomic():
        locked = CartCheckout.objects.select_for_update(of=OF_SELF).select_related('event').get(pk=checkout.pk)
        if locked.state != STATE_STARTED:
            return locked.state  # a webhook or Place order was quicker
        if public.is_paid:
            record_capture(locked, public.amount, public.currency, public.payment_intent_id)
            return STATE_OPEN
        if public.status == STATUS_EXPIRED:
            locked.state = STATE_EXPIRED
            locked.save(update_fields=['state'])
            return STATE_EXPIRED
    _ask_later(checkout, '')
    return STATE_STARTED


def _ask_later(checkout: CartCheckout, error: str) -> None:
    pause = min(ASK_FIRST_INTERVAL * (2 ** min(checkout.checks, 16)), ASK_MAX_INTERVAL)
    CartCheckout.objects.filter(pk=checkout.pk).update(
        checks=checkout.checks + 1, next_check=now() + pause, last_error=error[:1000])
    if checkout.unanswered_reported is None and checkout.created < now() - UNANSWERED_REPORT_AGE:
        CartCheckout.objects.filter(pk=checkout.pk).update(unanswered_reported=now())
        logger.warning('NodeRails gave no final answer about checkout %s since %s', checkout.session_id,
                       checkout.created)
        checkout.event.log_action(LOG_UNANSWERED, data={
            'session_id': checkout.session_id, 'amount': str(checkout.amount), 'currency': checkout.currency,
            'error': error[:500]})


def _intent_of_session(checkout: CartCheckout, client) -> str:
    """The intent to refund when the capture webhook named only the session."""
    intent_id = client.get_public_session(checkout.session_id).payment_intent_id
    if not intent_id:
        raise NodeRailsRequestRejected('NodeRails reports no payment intent for checkout %s.' % checkout.session_id)
    with transaction.atomic():
        CartCheckout.objects.filter(pk=checkout.pk).update(payment_intent_id=intent_id)
    checkout.payment_intent_id = intent_id
    return intent_id


def _note_error(checkout: CartCheckout, message: str) -> None:
    # The lease ends with the run: the next one retries with the same Idempotency-Key.
    CartCheckout.objects.filter(pk=checkout.pk).update(last_error=message[:1000], refund_lease_until=None)
    logger.warning('Refund of unclaimed NodeRails checkout %s postponed: %s', checkout.session_id, message)


def _finish(checkout: CartCheckout, state: str, refund_id: str = '', error: str = '') -> None:
    with transaction.atomic():
        locked = CartCheckout.objects.select_for_update(of=OF_SELF).select_related('event').get(pk=checkout.pk)
        if locked.state != STATE_REFUNDING:
            return  # settled by the other run or by the refund webhook: logged there
        locked.state = state
        locked.refund_id = refund_id or locked.refund_id
        locked.last_error = error[:1000]
        locked.refund_lease_until = None
        locked.save(update_fields=['state', 'refund_id', 'last_error', 'refund_lease_until'])
        locked.event.log_action(LOG_REFUNDED if state == STATE_REFUNDED else LOG_REFUND_FAILED, data={
            'session_id': locked.session_id, 'payment_intent_id': locked.payment_intent_id,
            'refund_id': locked.refund_id, 'amount': str(locked.amount), 'currency': locked.currency,
            'testmode': locked.testmode, 'error': locked.last_error,
        })
    checkout.state = state
