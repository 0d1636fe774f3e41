"""The money rules of the NodeRails payment, in one place.

What a cart still owes after gift cards, whether NodeRails' amount may confirm a payment,
binding a NodeRails id to a payment, what a payment remembers of NodeRails, confirming and
failing, and how refunds are claimed and settled. payment.py (pretix's provider hooks),
views.py (the webhook), signals.py (the periodic tasks) and unclaimed.py only gather what
NodeRails said and call these functions, so each rule holds the same on every path.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Iterable, Optional

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from pretix.base.models import Order, OrderPayment, OrderRefund, Quota
from pretix.base.payment import PaymentException
from pretix.helpers.database import OF_SELF

from . import events, unclaimed
from .conf import MODULE
from .models import NodeRailsReference

logger = logging.getLogger(__name__)

# Every NodeRails event is logged on its order with this action (signals.render_log_entry).
LOG_ACTION = 'pretix.plugins.' + MODULE + '.event'
# Situations the organiser must look at; pretix can e-mail them (signals.register_notifications).
LOG_FAILED_AFTER_CONFIRMATION = 'pretix.plugins.' + MODULE + '.failed_after_confirmation'
LOG_CONFIRMED_NOT_PAID = 'pretix.plugins.' + MODULE + '.confirmed_not_paid'
LOG_REFUND_UNCLEAR = 'pretix.plugins.' + MODULE + '.refund_unclear'
LOG_REFUND_REJECTED = 'pretix.plugins.' + MODULE + '.refund_rejected'
LOG_PAID_TWICE = 'pretix.plugins.' + MODULE + '.paid_twice'
# A payment failed although NodeRails took the money (notifications.py); and a refund still without
# a final answer a day after it was sent.
LOG_MONEY_HELD = 'pretix.plugins.' + MODULE + '.money_held'
LOG_REFUND_STALLED = 'pretix.plugins.' + MODULE + '.refund_stalled'
LOG_CAPTURE_UNREPORTED = 'pretix.plugins.' + MODULE + '.capture_unreported'
# The organiser sent the money of such a payment back (settlement.record_held_refund).
LOG_HELD_REFUND = 'pretix.plugins.' + MODULE + '.held_refund'

OPEN_PAYMENT_STATES = (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING)
# A capture may still settle a payment pretix gave up on: crypto can arrive late.
CONFIRMABLE_STATES = OPEN_PAYMENT_STATES + (OrderPayment.PAYMENT_STATE_CANCELED, OrderPayment.PAYMENT_STATE_FAILED)
FAILABLE_STATES = OPEN_PAYMENT_STATES
OPEN_REFUND_STATES = (OrderRefund.REFUND_STATE_CREATED, OrderRefund.REFUND_STATE_TRANSIT)
# Refunds that take money from their payment (pretix's own refunded_amount counts the open ones too).
REFUND_CLAIMING_STATES = OPEN_REFUND_STATES + (OrderRefund.REFUND_STATE_DONE, OrderRefund.REFUND_STATE_EXTERNAL)

# Keys of OrderPayment.info_data we own.
INFO_KEYS = ('session_id', 'payment_intent_id', 'tx_hash', 'chain_id', 'status', 'amount', 'currency', 'testmode',
             'problem', 'held_refund', 'capture_unreported')
# What a refund's info holds while NodeRails' answer to it is unknown (timeout, 5xx, ...).
REFUND_STATUS_UNKNOWN = 'UNKNOWN'
# apply_refund_event's answer when a refund event may be about an open refund whose NodeRails id is not
# known yet: the view answers 503, and NodeRails' redelivery finds the id known.
REFUND_NOT_ATTRIBUTABLE = 'not_attributable'

PAID, FAILED, OPEN = 'paid', 'failed', 'open'

# Outcomes of settle(), for the callers to word for their audience.
CONFIRMED = 'confirmed'
CONFIRMED_NOT_PAID = 'confirmed_not_paid'
CONFIRMED_CANCELED = 'confirmed_canceled'
CONFIRMED_PAID_TWICE = 'confirmed_paid_twice'
ALREADY_CONFIRMED = 'already_confirmed'
NOT_OPEN = 'not_open'
FAILED_NOW = 'failed'
FAILED_AFTER_CONFIRMATION = 'failed_after_confirmation'
STILL_OPEN = 'open'
PROBLEMS = ('amount_missing', 'currency_mismatch', 'amount_mismatch', 'reference_conflict')


@dataclass(frozen=True)
class Settled:
    """What settle() did: one of the outcomes above (or a problem), and pretix's message if any."""

    code: str
    detail: str = ''


@dataclass(frozen=True)
class Report:
    """What NodeRails says about one payment, from its public session or from a webhook event."""

    outcome: str  # PAID, FAILED or OPEN
    status: Optional[str] = None  # NodeRails' own word: PAID, CAPTURED, EXPIRED, ...
    amount: Optional[Decimal] = None
    currency: Optional[str] = None
    session_id: Optional[str] = None
    payment_intent_id: Optional[str] = None
    tx_hash: Optional[str] = None
    chain_id: Optional[int] = None
    # The customer approved the payment, which confirm_on does not count as money taken.
    approved_only: bool = False

    @classmethod
    def from_session(cls, public) -> 'Report':
        # The public session says PAID from the customer's approval on and cannot tell approval from
        # capture (docs/noderails-contract.md): with confirm_on = ["captured"] it confirms nothing, and
        # only the capture webhook does, as on the webhook path.
        paid = public.is_paid and events.approval_confirms()
        outcome = PAID if paid else FAILED if public.has_failed else OPEN
        return cls(outcome, public.status, public.amount, public.currency, public.session_id,
                   public.payment_intent_id, public.tx_hash, public.chain_id, approved_only=public.is_paid and not paid)

    @classmethod
    def from_event(cls, event, outcome: str) -> 'Report':
        return cls(outcome, event.status, event.amount, event.currency, event.checkout_session_id,
                   event.payment_intent_id, event.tx_hash, event.chain_id)


# -- what is due ------------------------------------------------------------------------------------


def amount_due(total: Decimal, multi_use_payments: Iterable[dict]) -> Decimal:
    """What is left for this provider of a cart ``total`` (payment fees included) after the
    multi-use payments already in the cart (gift cards), each taking what it may.

    The same walk over the payments as pretix's own (pretix.base.services.cart.get_fees,
    CartMixin.current_selected_payments) and its PayPal plugin (paypal2 views.XHRView).
    """
    remaining = total
    for payment in multi_use_payments:
        if payment.get('min_value') and remaining < Decimal(payment['min_value']):
            continue
        taken = remaining
        if payment.get('max_value') and taken > Decimal(payment['max_value']):
            taken = Decimal(payment['max_value'])
        remaining -= taken
    return max(remaining, Decimal('0.00'))


def amount_problem(payment: OrderPayment, amount: Optional[Decimal], currency: Optional[str]) -> Optional[str]:
    """Why NodeRails' amount/currency cannot confirm ``payment``; None when they match."""
    if amount is None or not currency:
        return 'amount_missing'
    if currency.upper() != payment.order.event.currency.upper():
        return 'currency_mismatch'
    # Exact comparison (12.5 == 12.50 as Decimals): no rounding in the payer's favour.
    if amount != payment.amount:
        return 'amount_mismatch'
    return None


# -- Idempotency-Keys: derived, never random, so a retry can never act twice -------------------------


def checkout_session_key(event, ref: str, amount: Decimal, testmode: bool, replaces: str) -> str:
    """For creating a checkout session: the same cart (or payment) and amount always send the same
    key, so a retried create gets NodeRails' first session back instead of a second one.
    ``replaces`` names a session of the same cart that can no longer be paid (expired, failed),
    '' for the first."""
    material = '|'.join((MODULE, str(event.pk), ref, str(amount), event.currency, str(bool(testmode)), replaces))
    return '%s:checkout:%s' % (MODULE, hashlib.sha256(material.encode()).hexdigest()[:40])


def refund_key(intent_id: str, refund: OrderRefund) -> str:
    """For refunding an OrderRefund: a retried or re-sent refund is the same refund at NodeRails.
    The intent id makes it unique across events and pretix instances."""
    return '%s:refund:%s:%s' % (MODULE, intent_id, refund.full_id)


# -- what a payment remembers ------------------------------------------------------------------------


def merge_info(payment: OrderPayment, report: Optional[Report] = None, **extra) -> dict:
    """The payment's info with what ``report`` adds; what the report leaves out is kept."""
    info = {k: v for k, v in payment.info_data.items() if k in INFO_KEYS}
    info['testmode'] = bool(payment.order.testmode)
    if report is not None:
        news = {
            'session_id': report.session_id, 'payment_intent_id': report.payment_intent_id,
            'tx_hash': report.tx_hash, 'chain_id': report.chain_id, 'status': report.status,
            'amount': str(report.amount) if report.amount is not None else None, 'currency': report.currency,
        }
        info.update({k: v for k, v in news.items() if v is not None})
    info.update(extra)
    return info


def link(reference: str, payment: OrderPayment) -> bool:
    """Bind a NodeRails id (session or intent) to ``payment``, once: a paid session can pay one
    order only. False when the id is bound to another payment already."""
    try:
        with transaction.atomic():
            # The payment row first, as the webhook does. PostgreSQL checks the new row's
            # foreign key at commit with a share lock on the payment; a webhook holding the
            # payment while inserting the same reference would otherwise deadlock with us.
            OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
            ref, _created = NodeRailsReference.objects.get_or_create(
                reference=reference, defaults={'order': payment.order, 'payment': payment})
    except IntegrityError:
        ref = NodeRailsReference.objects.get(reference=reference)
    return ref.payment_id == payment.pk


def bind_checkout(session_id: str, payment: OrderPayment) -> Optional[str]:
    """Bind the cart's checkout session to the order's payment; None when bound.

    Otherwise the reason it cannot be: the unclaimed-payment refund has begun for it (the
    checkout's state, see unclaimed.py) or 'reference_conflict'. The claim and the binding
    commit together, under the payment's and the checkout's row locks, so either Place order or
    the refund wins, never both. Idempotent: called when the order is created and again when
    the customer's browser confirms.
    """
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=payment.pk)
        lost_to = unclaimed.claim_checkout(session_id, locked.order.event)
        if lost_to is not None:
            return lost_to
        if not link(session_id, locked):
            return 'reference_conflict'
        if locked.info_data.get('session_id') != session_id:
            locked.info_data = merge_info(locked, session_id=session_id)
            locked.save(update_fields=['info'])
    payment.refresh_from_db()
    return None


def mark_pending(payment: OrderPayment, report: Optional[Report] = None) -> None:
    """Pending, so the reconciliation finds it; nothing changes once it is settled."""
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=payment.pk)
        if locked.state in OPEN_PAYMENT_STATES:
            locked.info_data = merge_info(locked, report)
            locked.state = OrderPayment.PAYMENT_STATE_PENDING
            locked.save(update_fields=['info', 'state'])
    payment.refresh_from_db()


# -- settling a payment ------------------------------------------------------------------------------


def settle(payment: OrderPayment, report: Report) -> Settled:
    """Apply NodeRails' report to the payment under its row lock.

    Raises LockTimeoutException when pretix cannot lock the order's quotas to mark it paid:
    everything here is rolled back then (the payment is pending again), for the webhook's
    redelivery or the reconciliation to finish.
    """
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order', 'order__event').get(
            pk=payment.pk)
        if report.outcome == PAID:
            outcome = _settle_paid(locked, report)
        elif report.outcome == FAILED:
            outcome = _settle_failed(locked, report)
        else:
            outcome = _settle_open(locked, report)
    payment.refresh_from_db()
    return outcome


def _settle_paid(payment: OrderPayment, report: Report) -> Settled:
    if payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED:
        _learn_ids(payment, report)
        return Settled(ALREADY_CONFIRMED)
    if payment.state not in CONFIRMABLE_STATES:
        return Settled(NOT_OPEN)
    problem = amount_problem(payment, report.amount, report.currency)
    if problem is None and report.payment_intent_id and not link(report.payment_intent_id, payment):
        problem = 'reference_conflict'
    if problem:
        # Authentic but wrong: the money question goes to a human. Failing the payment keeps
        # it from being confirmed by a later report of the same session.
        payment.order.log_action(LOG_ACTION, data={
            'problem': problem, 'session_id': report.session_id, 'payment_intent_id': report.payment_intent_id,
            'amount': str(report.amount) if report.amount is not None else None, 'currency': report.currency,
        })
        logger.warning('NodeRails payment %s not confirmed: %s', payment.full_id, problem)
        # The other spelling of the same capture finds the payment failed already: notified once.
        known = payment.state == OrderPayment.PAYMENT_STATE_FAILED and payment.info_data.get('problem') == problem
        payment.fail(info=merge_info(payment, report, problem=problem), log_data={'problem': problem})
        if known:
            return Settled(problem)
        # The money is at NodeRails and pretix offers no refund of a failed payment: the organiser is
        # notified and may send it back with one click (control.html, views.refund_held).
        payment.order.log_action(LOG_MONEY_HELD, data={
            'local_id': payment.local_id, 'problem': problem, 'amount': _text_or_none(report.amount),
            'currency': report.currency, 'expected': str(payment.amount), 'session_id': report.session_id,
            'payment_intent_id': report.payment_intent_id,
        })
        return Settled(problem)
    payment.info_data = merge_info(payment, report)
    return _confirm(payment)


def _learn_ids(payment: OrderPayment, report: Report) -> None:
    """NodeRails' ids for a payment confirmed before its report (the organiser marked it paid by
    hand): pretix's refund button needs the intent (payment_refund_supported), if the report is
    about this payment's money."""
    if payment.info_data.get('payment_intent_id') or not report.payment_intent_id:
        return
    if amount_problem(payment, report.amount, report.currency) is None and link(report.payment_intent_id, payment):
        payment.info_data = merge_info(payment, report)
        payment.save(update_fields=['info'])


def _confirm(payment: OrderPayment) -> Settled:
    """payment.confirm() where its two halves cannot come apart.

    pretix commits the payment's new state before it locks the quotas to mark the order paid;
    inside our transaction a lock timeout rolls back both. A sold-out quota leaves the payment
    confirmed and the order unpaid, as pretix intends (the money did arrive), and is logged
    here: pretix's own log entry for it is rolled back inside confirm().
    """
    # pretix confirms a payment into an order already paid (by another method, or by the organiser)
    # with only a line in its server log, not even its "overpaid" entry: the customer has paid twice.
    paid_before = payment.order.status == Order.STATUS_PAID
    try:
        payment.confirm()
    except Quota.QuotaExceededException as exc:
        return _confirmed_not_paid(payment, str(exc))
    if paid_before:
        payment.order.log_action(LOG_PAID_TWICE, data={'local_id': payment.local_id, 'amount': str(payment.amount)})
        return Settled(CONFIRMED_PAID_TWICE)
    if payment.order.status == Order.STATUS_CANCELED:
        # pretix confirms a payment into a canceled order without a word (only its server log says so):
        # the customer's money is now with the organiser, for an order that no longer stands.
        _confirmed_not_paid(payment, str(CANCELED_ORDER_PAID))
        return Settled(CONFIRMED_CANCELED)
    return Settled(CONFIRMED)


CANCELED_ORDER_PAID = _('the order was canceled before the money arrived.')


def _confirmed_not_paid(payment: OrderPayment, message: str) -> Settled:
    payment.order.log_action(LOG_CONFIRMED_NOT_PAID, data={
        'local_id': payment.local_id, 'amount': str(payment.amount), 'message': message})
    return Settled(CONFIRMED_NOT_PAID, message)


def _settle_failed(payment: OrderPayment, report: Report) -> Settled:
    if payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED:
        # A failure after the money was reported taken contradicts it: someone must look.
        payment.order.log_action(LOG_FAILED_AFTER_CONFIRMATION, data={
            'local_id': payment.local_id, 'status': report.status, 'session_id': report.session_id,
            'payment_intent_id': report.payment_intent_id,
        })
        return Settled(FAILED_AFTER_CONFIRMATION)
    if payment.state not in FAILABLE_STATES:
        return Settled(NOT_OPEN)
    payment.fail(info=merge_info(payment, report), log_data={'status': report.status})
    return Settled(FAILED_NOW)


def _settle_open(payment: OrderPayment, report: Report) -> Settled:
    if payment.state not in OPEN_PAYMENT_STATES:
        return Settled(NOT_OPEN)
    # Recorded, state kept: a "created" payment must stay so for pretix's confirm step, in
    # case its customer comes back to it.
    payment.info_data = merge_info(payment, report)
    payment.save(update_fields=['info'])
    if report.payment_intent_id:
        # An approval names the intent: a capture that names only the intent then finds the payment.
        link(report.payment_intent_id, payment)
    if report.approved_only and payment.created < now() - CAPTURE_UNREPORTED_AGE:
        report_capture_unreported(payment, report)
    return Settled(STILL_OPEN)


# With confirm_on = ["captured"] only the capture webhook confirms an approved payment, and NodeRails
# offers no call that says whether it captured (docs/noderails-contract.md). A payment approved this long
# ago whose capture never arrived may hold money pretix will never hear of: the organiser is told once,
# well before the reconciliation stops asking (signals.RECONCILE_MAX_AGE).
CAPTURE_UNREPORTED_AGE = timedelta(hours=12)


def report_capture_unreported(payment: OrderPayment, report: Report) -> None:
    if payment.info_data.get('capture_unreported'):
        return
    payment.info_data = merge_info(payment, report, capture_unreported=now().isoformat())
    payment.save(update_fields=['info'])
    payment.order.log_action(LOG_CAPTURE_UNREPORTED, data={
        'local_id': payment.local_id, 'amount': str(payment.amount), 'currency': payment.order.event.currency,
        'session_id': report.session_id, 'payment_intent_id': report.payment_intent_id,
    })


def close(payment: OrderPayment) -> None:
    """pretix cancels an open payment (its order is canceled, or the organiser or customer gives it up).

    Canceled, it is no longer an open payment: the reconciliation stops asking NodeRails about it
    and the status endpoint stops its checkout page polling. Its NodeRails references stay bound,
    so a capture that arrives later still finds it (CONFIRMABLE_STATES). Raises PaymentException
    when NodeRails confirmed it meanwhile: pretix then keeps it and logs that it could not cancel it.
    """
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
        if locked.state == OrderPayment.PAYMENT_STATE_CONFIRMED:
            raise PaymentException(_('This crypto payment has just been confirmed and cannot be canceled.'))
        if locked.state in OPEN_PAYMENT_STATES:
            locked.state = OrderPayment.PAYMENT_STATE_CANCELED
            locked.save(update_fields=['state'])
    payment.refresh_from_db()


def is_closed(session_id: str) -> bool:
    """Whether pretix canceled the payment this checkout session is bound to."""
    return NodeRailsReference.objects.filter(
        reference=session_id, payment__state=OrderPayment.PAYMENT_STATE_CANCELED).exists()


# -- refunds -----------------------------------------------------------------------------------------


def claim_refund(refund: OrderRefund, intent_id: str) -> bool:
    """Reserve the refund's amount on its payment before NodeRails is asked; False when the
    payment has no such amount left.

    Two refunds requested at once (a double click, two organisers) both pass pretix's
    refundable-amount check. Serialised on the payment row, the second one sees the first
    one's claim. The claim commits before the NodeRails call, so no lock is held while it
    runs, and a retry of the same OrderRefund passes its own claim and resends the same key.
    """
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=refund.payment_id)
        others = OrderRefund.objects.filter(payment=locked).exclude(pk=refund.pk)
        claimed = sum((r.amount for r in others if _claims_payment(r)), Decimal('0.00'))
        if claimed + refund.amount > locked.amount:
            return False
        refund.info_data = dict(refund.info_data, payment_intent_id=intent_id,
                                idempotency_key=refund_key(intent_id, refund))
        refund.save(update_fields=['info'])
    return True


def _claims_payment(refund: OrderRefund) -> bool:
    if refund.state == OrderRefund.REFUND_STATE_CREATED:
        return bool(refund.info_data.get('idempotency_key'))  # sent to NodeRails, or about to be
    return refund.state in REFUND_CLAIMING_STATES


def record_refund(refund: OrderRefund, result) -> None:
    """Store NodeRails' answer to a refund: done, or in transit until the payment.refunded webhook or
    the reconciliation's next question brings a final one. (A refusal never gets here: client.py
    raises it as NodeRailsRequestRejected.)"""
    with transaction.atomic():
        # The webhook may have settled this refund while NodeRails was answering us;
        # done() twice would log the refund twice.
        locked = OrderRefund.objects.select_for_update(of=OF_SELF).select_related('order', 'payment').get(
            pk=refund.pk)
        locked.info_data = _answered(locked.info_data, refund_id=result.refund_id, status=result.status)
        if locked.state not in OPEN_REFUND_STATES:
            locked.save(update_fields=['info'])
        elif result.status == 'COMPLETED':
            locked.save(update_fields=['info'])
            locked.done()
        else:
            # Not final (PENDING, or a word we do not know): the refund webhook settles it, and should
            # that be lost, the reconciliation asks again (needs_asking) until NodeRails says COMPLETED.
            locked.info_data = _ask_later(dict(locked.info_data, not_final=True),
                                          'NodeRails answered %s' % result.status)
            locked.state = OrderRefund.REFUND_STATE_TRANSIT
            locked.save(update_fields=['info', 'state'])
    refund.refresh_from_db()


def leave_refund_open(refund: OrderRefund, reason: str) -> None:
    """NodeRails may have carried the refund out (timeout, broken connection, 5xx, unreadable
    answer). Failing it would invite a second refund of money that may be on its way, so it
    stays in transit, counted by pretix as refunded, until the payment.refunded webhook or the
    reconciliation (which re-sends it with the same Idempotency-Key) settles it. The organiser
    is told so on the order."""
    with transaction.atomic():
        locked = OrderRefund.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=refund.pk)
        if locked.state not in OPEN_REFUND_STATES:
            return
        locked.info_data = dict(locked.info_data, status=REFUND_STATUS_UNKNOWN)
        locked.state = OrderRefund.REFUND_STATE_TRANSIT
        locked.save(update_fields=['info', 'state'])
        locked.order.log_action(LOG_REFUND_UNCLEAR, data={
            'local_id': locked.local_id, 'amount': str(locked.amount), 'reason': reason,
            'payment_intent_id': locked.info_data.get('payment_intent_id'),
        })
    refund.refresh_from_db()


def reject_refund(refund: OrderRefund, message: str) -> None:
    """NodeRails refused a refund it was asked again (by the reconciliation): it never happened."""
    with transaction.atomic():
        # The payment first, as claim_refund and the webhook lock them.
        payment = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=refund.payment_id)
        locked = OrderRefund.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=refund.pk)
        if locked.state not in OPEN_REFUND_STATES:
            return
        locked.info_data = dict(locked.info_data, status='REJECTED', error=message[:500])
        locked.state = OrderRefund.REFUND_STATE_FAILED
        locked.save(update_fields=['info', 'state'])
        _reopen_if_not_refunded(payment)
        locked.order.log_action(LOG_REFUND_REJECTED, data={
            'local_id': locked.local_id, 'amount': str(locked.amount), 'message': message[:500]})
    refund.refresh_from_db()


def _reopen_if_not_refunded(payment: OrderPayment) -> None:
    """pretix marks a payment refunded as soon as its refunds, open ones included, reach its amount
    (OrderRefund.done). When one of those open refunds fails afterwards, the payment would stay marked
    refunded with money left on it, which pretix then no longer offers to refund: it is confirmed again."""
    if payment.state == OrderPayment.PAYMENT_STATE_REFUNDED and payment.refunded_amount < payment.amount:
        payment.state = OrderPayment.PAYMENT_STATE_CONFIRMED
        payment.save(update_fields=['state'])


# -- money held for a payment that failed after the customer paid -------------------------------------

# Problems whose money can be sent back in one click: NodeRails reported what it took. Not a reference
# conflict (the intent paid another payment) nor a missing amount (nothing to send back is known).
HELD_REFUNDABLE_PROBLEMS = ('amount_mismatch', 'currency_mismatch')
# Refund answers after which the one-click refund is not offered again.
HELD_REFUND_ANSWERED = ('PENDING', 'COMPLETED', 'REJECTED')


def held_amount(payment: OrderPayment) -> Optional[Decimal]:
    """What NodeRails holds for a failed payment that can be sent back in one click; None otherwise."""
    info = payment.info_data
    if payment.state != OrderPayment.PAYMENT_STATE_FAILED or info.get('problem') not in HELD_REFUNDABLE_PROBLEMS:
        return None
    if not info.get('payment_intent_id') or (info.get('held_refund') or {}).get('status') in HELD_REFUND_ANSWERED:
        return None
    if NodeRailsReference.objects.filter(reference=info['payment_intent_id']).exclude(payment=payment).exists():
        return None  # the intent paid another payment: not this one's money to send back
    try:
        amount = Decimal(info.get('amount'))
    except (TypeError, ArithmeticError, ValueError):
        return None
    return amount if amount.is_finite() and amount > 0 else None


def held_refund_key(intent_id: str) -> str:
    """Derived from the intent: a second click, or one after an unclear answer, is the same refund."""
    return '%s:held-refund:%s' % (MODULE, intent_id)


def claim_held_refund(payment: OrderPayment) -> Optional[dict]:
    """Record, before NodeRails is asked, that the held money is being sent back; the refund to send,
    or None when there is nothing (left) to send. Under the payment's row lock, so two clicks at once
    send one request each with the same Idempotency-Key, never two refunds."""
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
        amount = held_amount(locked)
        if amount is None:
            return None
        intent_id = locked.info_data['payment_intent_id']
        claim = {'amount': str(amount), 'status': REFUND_STATUS_UNKNOWN, 'idempotency_key': held_refund_key(intent_id)}
        locked.info_data = dict(locked.info_data, held_refund=claim)
        locked.save(update_fields=['info'])
    payment.refresh_from_db()
    return dict(claim, payment_intent_id=intent_id)


def record_held_refund(payment: OrderPayment, status: str, refund_id: Optional[str] = None, error: str = '',
                       amount: Optional[str] = None) -> None:
    """NodeRails' answer to the held-money refund, on the payment and on the order's log; `amount`
    for a refund pretix did not send (made in the NodeRails dashboard)."""
    with transaction.atomic():
        locked = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=payment.pk)
        held = dict(locked.info_data.get('held_refund') or {}, status=status, refund_id=refund_id, error=error[:500])
        held.setdefault('amount', amount)
        locked.info_data = dict(locked.info_data, held_refund=held)
        locked.save(update_fields=['info'])
        locked.order.log_action(LOG_HELD_REFUND, data={
            'local_id': locked.local_id, 'amount': held.get('amount'), 'currency': locked.info_data.get('currency'),
            'status': status, 'refund_id': refund_id, 'message': error[:500]})
    payment.refresh_from_db()


# -- refunds without a final answer --------------------------------------------------------------------

# A refund NodeRails gave no clear answer to is sent again (same Idempotency-Key) after a pause that
# doubles from REFUND_RETRY_FIRST up to REFUND_RETRY_MAX, for as long as NodeRails answers "not final":
# a short outage is over within minutes, a long one costs a few calls a day.
REFUND_RETRY_FIRST = timedelta(minutes=10)
REFUND_RETRY_MAX = timedelta(hours=6)
# Without a final answer after this long, the organiser is notified (once) and the backend marks the
# refund as needing attention.
REFUND_STALL_AGE = timedelta(days=1)


def refund_due(refund: OrderRefund) -> bool:
    """Whether an unclear refund's pause is over."""
    due = parse_datetime(refund.info_data.get('next_check') or '')
    return due is None or due <= now()


def refund_unanswered(refund: OrderRefund, message: str) -> None:
    """Asked again (needs_asking), still no clear answer: the pause before the next time doubles."""
    with transaction.atomic():
        locked = OrderRefund.objects.select_for_update(of=OF_SELF).get(pk=refund.pk)
        if not needs_asking(locked):
            return
        locked.info_data = _ask_later(locked.info_data, message)
        locked.save(update_fields=['info'])
    refund.refresh_from_db()


def _ask_later(info: dict, message: str) -> dict:
    """A refund's info with its next question to NodeRails put off: each pause doubles."""
    checks = int(info.get('checks') or 0) + 1
    pause = min(REFUND_RETRY_FIRST * (2 ** min(checks - 1, 16)), REFUND_RETRY_MAX)
    return dict(info, checks=checks, next_check=(now() + pause).isoformat(), error=message[:500])


def report_stalled(refund: OrderRefund) -> bool:
    """Notify the organiser, once, of an unclear refund older than REFUND_STALL_AGE; True if it was now."""
    with transaction.atomic():
        locked = OrderRefund.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=refund.pk)
        if not is_unclear(locked) or locked.info_data.get('stalled') or locked.created > now() - REFUND_STALL_AGE:
            return False
        locked.info_data = dict(locked.info_data, stalled=now().isoformat())
        locked.save(update_fields=['info'])
        locked.order.log_action(LOG_REFUND_STALLED, data={
            'local_id': locked.local_id, 'amount': str(locked.amount),
            'payment_intent_id': locked.info_data.get('payment_intent_id'),
            'message': locked.info_data.get('error') or '', 'since': locked.created.isoformat()})
    refund.refresh_from_db()
    return True


def is_unclear(refund: OrderRefund) -> bool:
    """In transit without a final answer: none clear (timeout, 5xx), or a NodeRails state that is not final."""
    info = refund.info_data
    return refund.state == OrderRefund.REFUND_STATE_TRANSIT and (
        bool(info.get('not_final')) or (not info.get('refund_id') and info.get('status') == REFUND_STATUS_UNKNOWN))


def apply_refund_event(payment: OrderPayment, event) -> str:
    """A payment.refunded event on a row-locked payment; returns what happened, for the response,
    or REFUND_NOT_ATTRIBUTABLE when the event must wait for NodeRails' redelivery.

    Ours (the open OrderRefund NodeRails named with this refund id) is marked done. An event is
    never matched to one of our refunds by its amount: NodeRails' ``amount`` may be the intent's
    (docs/noderails-contract.md), and two refunds of one amount cannot be told apart. So:

    * an event without a refund id, while refunds are open on the payment, settles none of them:
      they are asked about again (the same request, the same Idempotency-Key), and NodeRails'
      answer names each refund it made;
    * an event naming a refund pretix does not know, while some open refund's NodeRails id is
      not known yet, may be that refund: it is asked about again and the event waits for its
      redelivery, by which time the id is known;
    * otherwise the refund was made in the NodeRails dashboard and is recorded as external, for the
      part not already covered by refunds pretix has: both spellings and redeliveries count once.
    """
    if payment.state not in (OrderPayment.PAYMENT_STATE_CONFIRMED, OrderPayment.PAYMENT_STATE_REFUNDED):
        return _held_money_returned(payment, event)
    refund = _open_refund_named(payment, event.refund_id)
    if refund is not None:
        refund.info_data = _answered(refund.info_data, refund_id=event.refund_id, status=event.status or 'COMPLETED')
        refund.save(update_fields=['info'])
        refund.done()
        return 'Refund done'
    if event.refund_id and _refund_known(payment, event.refund_id):
        return 'Refund already recorded'
    unsettled = list(OrderRefund.objects.select_for_update(of=OF_SELF).filter(
        payment=payment, state__in=OPEN_REFUND_STATES))
    if not event.refund_id and unsettled:
        ask_again(unsettled)
        return 'Refund without its id: the open refunds are asked about again'
    unnamed = [r for r in unsettled if not r.info_data.get('refund_id')]
    if unnamed:
        ask_again(unnamed)
        return REFUND_NOT_ATTRIBUTABLE
    if event.amount is None or event.amount <= 0 or (event.currency or '') != payment.order.event.currency.upper():
        return 'Refund without usable amount, logged only'
    uncovered = min(event.amount, payment.amount - _refunded(payment))
    if uncovered <= 0:
        return 'Refund already covered by recorded refunds'
    payment.create_external_refund(amount=uncovered, info=json.dumps({
        'refund_id': event.refund_id, 'payment_intent_id': event.payment_intent_id, 'status': event.status,
        'reported_amount': str(event.amount),
    }))
    return 'External refund recorded'


def _held_money_returned(payment: OrderPayment, event) -> str:
    """A refund of a payment pretix never confirmed: the money NodeRails held for a failed payment
    going back (the one-click refund, or one made in the NodeRails dashboard). The order never
    counted that money, so it is recorded on the payment, never as a refund of the order's."""
    held = payment.info_data.get('held_refund') or {}
    if held.get('status') == 'COMPLETED' and event.refund_id in (None, held.get('refund_id')):
        return 'Refund of money held already recorded'
    record_held_refund(payment, 'COMPLETED', refund_id=event.refund_id or held.get('refund_id'),
                       amount=_text_or_none(event.amount))
    return 'Refund of money held recorded'


def ask_again(refunds: Iterable[OrderRefund]) -> None:
    """Have the reconciliation re-send these open refunds on its next run (signals.py), whatever
    their pause: NodeRails answers a re-sent refund with the refund it made and its state."""
    for refund in refunds:
        info = dict(refund.info_data, recheck=True)
        info.pop('next_check', None)
        refund.info_data = info
        refund.save(update_fields=['info'])


def needs_asking(refund: OrderRefund) -> bool:
    """Whether the reconciliation re-sends this refund: it has no final answer, or a refund event
    NodeRails sent could not be attributed without asking (ask_again)."""
    return is_unclear(refund) or (refund.state in OPEN_REFUND_STATES and bool(refund.info_data.get('recheck'))
                                  and bool(refund.info_data.get('idempotency_key')))


def _answered(info: dict, **answer) -> dict:
    """A refund's info once NodeRails has answered for it: nothing left to ask (ask_again)."""
    info = dict(info, **answer)
    info.pop('recheck', None)
    info.pop('not_final', None)
    return info


def _open_refund_named(payment: OrderPayment, refund_id: Optional[str]) -> Optional[OrderRefund]:
    if not refund_id:
        return None
    open_refunds = OrderRefund.objects.select_for_update(of=OF_SELF).filter(payment=payment, state__in=OPEN_REFUND_STATES)
    for refund in open_refunds:
        if refund.info_data.get('refund_id') == refund_id:
            return refund
    return None


def _refund_known(payment: OrderPayment, refund_id: str) -> bool:
    return any(r.info_data.get('refund_id') == refund_id
               for r in OrderRefund.objects.filter(payment=payment, state__in=REFUND_CLAIMING_STATES))


def _refunded(payment: OrderPayment) -> Decimal:
    return sum((r.amount for r in OrderRefund.objects.filter(payment=payment, state__in=REFUND_CLAIMING_STATES)),
               Decimal('0.00'))


def _text_or_none(amount: Optional[Decimal]) -> Optional[str]:
    return str(amount) if amount is not None else None
