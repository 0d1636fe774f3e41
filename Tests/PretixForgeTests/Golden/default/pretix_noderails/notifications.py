"""What the organiser must hear of money at NodeRails, as pretix notifications.

Each case is a log entry (on the order, or on the event where no order exists); pretix e-mails it to
the team members who subscribed to its type, the way it sends its own notifications. The detail says
what happened and the action what to do. signals.register_money_notifications registers these types.
"""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from pretix.base.notifications import Notification, ParametrizedOrderNotificationType

from . import settlement, unclaimed

# Why a payment failed although NodeRails took the money, in the organiser's words.
PROBLEM_TEXTS = {
    'amount_mismatch': _('NodeRails took another amount than the order asked for.'),
    'currency_mismatch': _('NodeRails took the money in another currency than the event\'s.'),
    'amount_missing': _('NodeRails did not report the amount it took.'),
    'reference_conflict': _('The NodeRails payment is already assigned to another payment.'),
}


class MoneyHeldNotificationType(ParametrizedOrderNotificationType):
    """A payment failed after the customer paid: how much NodeRails holds, and what to do."""

    def build_notification(self, logentry):
        n = super().build_notification(logentry)
        data = logentry.parsed_data
        n.detail = PROBLEM_TEXTS.get(data.get('problem'), '')
        n.add_attribute(_('Money held at NodeRails'), _held(data))
        n.add_attribute(_('NodeRails payment intent'), data.get('payment_intent_id') or '?')
        if data.get('problem') in settlement.HELD_REFUNDABLE_PROBLEMS:
            n.add_attribute(_('What to do'), _('Refund the money held with the button on the failed payment of '
                                               'the order, or ask the customer to pay the order again.'))
        else:
            n.add_attribute(_('What to do'), _('Check the payment in the NodeRails dashboard and refund it there.'))
        return n


class ConfirmedNotPaidNotificationType(ParametrizedOrderNotificationType):
    """NodeRails took the money, pretix confirmed the payment, and the order is still not paid: its quota
    is sold out, or it was canceled before the money arrived."""

    def build_notification(self, logentry):
        n = super().build_notification(logentry)
        data = logentry.parsed_data
        n.detail = str(_('NodeRails took the money for this order, but pretix could not mark the order as paid.'))
        n.add_attribute(_('Amount'), data.get('amount') or '?')
        n.add_attribute(_('Reason'), data.get('message') or '?')
        n.add_attribute(_('What to do'), _('Mark the order as paid if it should stand (after freeing quota, or '
                                           'reactivating it), or refund the payment: Order → Refund.'))
        return n


class RefundStalledNotificationType(ParametrizedOrderNotificationType):
    """A refund NodeRails has given no final answer to for a day."""

    def build_notification(self, logentry):
        n = super().build_notification(logentry)
        data = logentry.parsed_data
        n.detail = str(_('NodeRails has given no final answer to this refund for a day; the plugin keeps asking.'))
        n.add_attribute(_('Refund amount'), data.get('amount') or '?')
        n.add_attribute(_('Last answer'), data.get('message') or '?')
        n.add_attribute(_('What to do'), _('Check the refund in the NodeRails dashboard. Do not refund this amount '
                                           'again: the refund may still be carried out.'))
        return n


class CaptureUnreportedNotificationType(ParametrizedOrderNotificationType):
    """A payment approved long ago whose capture never reached pretix (confirm_on = ["captured"])."""

    def build_notification(self, logentry):
        n = super().build_notification(logentry)
        data = logentry.parsed_data
        n.detail = str(_('The customer approved this NodeRails payment more than 12 hours ago, but pretix never heard that '
                         'NodeRails captured it. pretix confirms such a payment only on the capture webhook, and '
                         'cannot ask NodeRails about it.'))
        n.add_attribute(_('Amount'), _held(data))
        n.add_attribute(_('NodeRails payment intent'), data.get('payment_intent_id') or '?')
        n.add_attribute(_('What to do'), _('Check the payment in the NodeRails dashboard. If it was captured, mark '
                                           'the payment as paid in pretix; if not, cancel it. Check the webhook '
                                           'health on the NodeRails settings page.'))
        return n


class AdvisedOrderNotificationType(ParametrizedOrderNotificationType):
    """An order's case with a fixed explanation: what happened, the amount, and what to do."""

    def __init__(self, event, action_type, verbose_name, title, detail, advice):
        super().__init__(event, action_type, verbose_name, title)
        self._detail = detail
        self._advice = advice

    def build_notification(self, logentry):
        n = super().build_notification(logentry)
        n.detail = str(self._detail)
        n.add_attribute(_('Amount'), logentry.parsed_data.get('amount') or '?')
        n.add_attribute(_('What to do'), self._advice)
        return n


class CheckoutNotificationType(AdvisedOrderNotificationType):
    """About a paid checkout that never became an order, logged on the event.

    An order notification type only for its permission, whose name differs between pretix
    releases; the notification is built from the log entry alone.
    """

    def build_notification(self, logentry):
        data = logentry.parsed_data
        event = logentry.event
        url = settings.SITE_URL + reverse('control:event.index', kwargs={
            'organizer': event.organizer.slug, 'event': event.slug})
        n = Notification(event=event, title=str(self._title), detail=str(self._detail), url=url)
        n.add_attribute(_('Event'), event.name)
        n.add_attribute(_('Amount'), _held(data))
        n.add_attribute(_('NodeRails checkout session'), data.get('session_id') or '?')
        if data.get('error'):
            n.add_attribute(_('NodeRails\' answer'), data['error'])
        n.add_attribute(_('What to do'), self._advice)
        return n


def _held(data: dict) -> str:
    return '%s %s' % (data.get('amount') or '?', data.get('currency') or '')


def notification_types(event):
    return (
        MoneyHeldNotificationType(
            event, settlement.LOG_MONEY_HELD,
            _('NodeRails payment failed after the customer paid'),
            _('A NodeRails payment for order {order.code} failed after the customer paid: money is held'),
        ),
        ConfirmedNotPaidNotificationType(
            event, settlement.LOG_CONFIRMED_NOT_PAID,
            _('NodeRails payment received, order not marked as paid'),
            _('A NodeRails payment for order {order.code} arrived, but the order could not be marked as paid.'),
        ),
        RefundStalledNotificationType(
            event, settlement.LOG_REFUND_STALLED,
            _('NodeRails refund without a final answer for a day'),
            _('NodeRails has given no final answer to a refund of order {order.code} for a day'),
        ),
        CaptureUnreportedNotificationType(
            event, settlement.LOG_CAPTURE_UNREPORTED,
            _('NodeRails payment approved but its capture never reported'),
            _('The capture of a NodeRails payment for order {order.code} was never reported'),
        ),
        AdvisedOrderNotificationType(
            event, settlement.LOG_PAID_TWICE,
            _('NodeRails payment for an order already paid'),
            _('A NodeRails payment arrived for order {order.code}, which was already paid'),
            _('The customer paid this order twice: NodeRails took the money after the order had been paid '
              'another way. pretix confirmed the payment, so the order is now overpaid.'),
            _('Refund the NodeRails payment: Order → Refund.'),
        ),
        AdvisedOrderNotificationType(
            event, settlement.LOG_FAILED_AFTER_CONFIRMATION,
            _('NodeRails reported a failure for a confirmed payment'),
            _('NodeRails reported a failure for a confirmed payment of order {order.code}'),
            _('NodeRails reported a payment as failed after pretix had confirmed it. The order was not changed: '
              'it stays paid, and its tickets may have been sent.'),
            _('Check the payment in the NodeRails dashboard. If NodeRails did not take the money, ask the customer '
              'to pay again, or cancel the order.'),
        ),
        AdvisedOrderNotificationType(
            event, settlement.LOG_REFUND_UNCLEAR,
            _('NodeRails refund without a clear answer'),
            _('NodeRails gave no clear answer to a refund of order {order.code}; it stays in transit'),
            _('NodeRails gave no clear answer to this refund. It may have been carried out, so it stays in '
              'transit and the plugin asks NodeRails again.'),
            _('Do not refund this amount again. You will be told if NodeRails rejects it, or gives no final '
              'answer for a day.'),
        ),
        AdvisedOrderNotificationType(
            event, settlement.LOG_REFUND_REJECTED,
            _('NodeRails refund rejected'),
            _('NodeRails rejected a refund of order {order.code}'),
            _('NodeRails rejected a refund that had no clear answer before: it was not carried out, and the '
              'customer has not been refunded.'),
            _('Refund the customer again: Order → Refund, or in the NodeRails dashboard.'),
        ),
        CheckoutNotificationType(
            event, unclaimed.LOG_UNANSWERED,
            _('NodeRails checkout without a final answer'),
            _('NodeRails has given no final answer about a checkout without an order'),
            _('A customer started the crypto checkout but no order was placed, and NodeRails has not said whether '
              'the checkout was paid or expired. The plugin keeps asking; if it was paid, it refunds it.'),
            _('Check the checkout session in the NodeRails dashboard. If it was paid, the plugin refunds it as '
              'soon as NodeRails answers; if NodeRails keeps failing, refund it there.'),
        ),
        CheckoutNotificationType(
            event, unclaimed.LOG_REFUNDED,
            _('NodeRails payment without an order refunded'),
            _('A NodeRails payment without an order was refunded'),
            _('A customer paid in the crypto checkout but no order was placed in time; the payment has been '
              'refunded to the customer automatically.'),
            _('Nothing: this is for your information.'),
        ),
        CheckoutNotificationType(
            event, unclaimed.LOG_REFUND_FAILED,
            _('NodeRails payment without an order not refunded'),
            _('A NodeRails payment without an order could not be refunded'),
            _('A customer paid in the crypto checkout but no order was placed in time, and NodeRails refused '
              'to refund the payment.'),
            _('Refund the payment in the NodeRails dashboard, or contact the customer.'),
        ),
    )
