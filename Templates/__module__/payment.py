"""pretix payment provider for NodeRails hosted crypto checkout.

Flow: checkout_prepare creates a NodeRails checkout session for what the cart still owes and
keeps its id in the customer's session; the confirm page embeds the hosted checkout; Place
order binds the session to the new payment (signals.bind_checkout_to_new_order); execute_payment
re-verifies the session server-side before confirming. The webhook (views.py) confirms the same
payment independently, so whichever arrives first wins and the other is a no-op. A session paid
but never turned into an order is refunded after a grace period (unclaimed.py).

This module holds pretix's provider hooks only; the money rules they apply are in settlement.py.
"""

import hashlib
import json
import logging
import re
from collections import OrderedDict
from decimal import Decimal
from typing import Optional
from urllib.parse import quote, urlsplit

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.template.loader import get_template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from i18nfield.strings import LazyI18nString
from pretix.base.forms import SecretKeySettingsField
from pretix.base.models import Event, Order, OrderPayment, OrderRefund, TaxRule
from pretix.base.payment import BasePaymentProvider, PaymentException
from pretix.base.services.locking import LockTimeoutException
from pretix.base.templatetags.money import money_filter
from pretix.multidomain.urlreverse import build_absolute_uri, eventreverse

from . import chains, compat, conf, settlement, webhook_health
from .client import (
    STATUS_FAILED,
    NodeRailsBadResponse,
    NodeRailsClient,
    NodeRailsError,
    NodeRailsNotSent,
    NodeRailsRequestRejected,
    format_amount,
)
from .conf import (
    API_BASE_URL,
    CURRENCY,
    IDENTIFIER,
    MODULE,
    PAYMENT_UI_URL,
    POLL_INTERVAL_SECONDS,
)
from .texts import (
    CONFIRM_HEADING,
    CONFIRM_INSTRUCTIONS,
    FAILURE_MESSAGE,
    INVOICE_TEXT,
    LOGO_ALT,
    LOGO_FILE,
    PAYMENT_DESCRIPTION,
    PENDING_EMAIL_TEXT,
    PUBLIC_NAME,
    SUCCESS_MESSAGE,
    VERBOSE_NAME,
    WAITING_MESSAGE,
)
from .unclaimed import REUSABLE_STATES, STATE_FAILED, remember_checkout

logger = logging.getLogger(__name__)

# Namespaced by module so two NodeRails-based plugins (or two renders of this one)
# never read each other's checkout state.
SESSION_KEY = MODULE + ':checkout'

# shred_payment_info keeps only the NodeRails references needed for refunds and
# reconciliation (a refund still on its way must stay matchable and askable); the tx hash is
# dropped because it links the order to the customer's wallet on a public chain.
SHRED_KEEP = ('session_id', 'payment_intent_id', 'status', 'amount', 'currency', 'testmode',
              'refund_id', 'idempotency_key', 'recheck', 'not_final', 'checks', 'next_check', 'stalled')

# Where pending_email_text puts the link to the order page.
ORDER_URL_PLACEHOLDER = '{order_url}'

# The transaction hash, linked to its explorer where there is one; shared by the order page and the backend.
TX_HASH_TEMPLATE = MODULE + '/transaction_hash.html'

# A cart whose checkout expired gets a new one; this many in a row at most before giving up.
MAX_SESSION_REPLACEMENTS = 5

_CURRENCY_RE = re.compile(r'^[A-Z]{3}$')
_LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')


def branded_texts() -> dict:
    """The organiser's confirm-page texts, each resolved to the customer's language on render."""
    return {
        'heading': LazyI18nString(CONFIRM_HEADING),
        'instructions': LazyI18nString(CONFIRM_INSTRUCTIONS),
        'waiting': LazyI18nString(WAITING_MESSAGE),
        'success': LazyI18nString(SUCCESS_MESSAGE),
        'failure': LazyI18nString(FAILURE_MESSAGE),
        'logo_alt': LazyI18nString(LOGO_ALT),
    }


def validate_service_url(value: str) -> None:
    """https only (plain http only for a local NodeRails simulator), no path, query or credentials."""
    parts = urlsplit(value or '')
    local = parts.scheme == 'http' and parts.hostname in _LOCAL_HOSTS
    if parts.scheme != 'https' and not local:
        raise ValidationError(_('Please enter an https:// URL.'))
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError(_('Please enter a plain URL without credentials, query or fragment.'))


def origin_of(url: str) -> Optional[str]:
    """scheme://host[:port] of a URL, as used for CSP and postMessage origin checks."""
    parts = urlsplit(url or '')
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        return None
    return '%s://%s' % (parts.scheme, parts.netloc.rsplit('@', 1)[-1].lower())


def currency_places(currency: str) -> int:
    return getattr(django_settings, 'CURRENCY_PLACES', {}).get(currency, 2)


def get_checkout_state(request: HttpRequest, event: Event) -> Optional[dict]:
    """This browser session's NodeRails checkout for ``event``, if any."""
    state = request.session.get(SESSION_KEY)
    if not isinstance(state, dict) or state.get('event') != event.pk or not state.get('session_id'):
        return None
    return state


def clear_checkout_state(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


class NodeRailsPayment(BasePaymentProvider):
    identifier = IDENTIFIER
    verbose_name = VERBOSE_NAME
    public_name = PUBLIC_NAME
    abort_pending_allowed = False
    execute_payment_needs_user = True

    # -- configuration --------------------------------------------------------------

    @property
    def settings_form_fields(self):
        fields = [
            ('api_base_url', forms.URLField(
                label=_('NodeRails API URL'), initial=API_BASE_URL, required=True,
                validators=[validate_service_url],
            )),
            ('payment_ui_url', forms.URLField(
                label=_('NodeRails payment page URL'), initial=PAYMENT_UI_URL, required=True,
                help_text=_('Origin of the hosted checkout that is embedded on the order confirmation page.'),
                validators=[validate_service_url],
            )),
            ('currency', forms.CharField(
                label=_('Currency'), initial=CURRENCY, required=True, max_length=3,
                help_text=_('This payment method is only offered when the event currency matches.'),
                validators=[_validate_currency],
            )),
            ('app_id', forms.CharField(label=_('NodeRails App ID (live)'), required=False)),
            ('api_key', SecretKeySettingsField(
                label=_('NodeRails API secret key (live)'), required=False,
                help_text=_('Needs the PAYMENTS_VIEW and REFUNDS_MANAGE permissions.'),
            )),
            ('webhook_secret', SecretKeySettingsField(
                label=_('Webhook signing secret (live)'), required=False,
                help_text=_('Shown once when you register the webhook in the NodeRails dashboard.'),
            )),
            ('app_id_test', forms.CharField(label=_('NodeRails App ID (test)'), required=False)),
            ('api_key_test', SecretKeySettingsField(label=_('NodeRails API secret key (test)'), required=False)),
            ('webhook_secret_test', SecretKeySettingsField(label=_('Webhook signing secret (test)'), required=False)),
        ]
        d = OrderedDict(fields + list(super().settings_form_fields.items()))
        d.move_to_end('_enabled', last=False)
        return d

    def settings_form_clean(self, cleaned_data):
        cleaned_data = super().settings_form_clean(cleaned_data)
        prefix = 'payment_%s_' % self.identifier
        if cleaned_data.get(prefix + '_enabled'):
            missing = [k for k in ('app_id', 'api_key', 'webhook_secret') if not cleaned_data.get(prefix + k)]
            if missing:
                raise ValidationError(_('Please enter the live App ID, API secret key and webhook signing secret.'))
        currency = cleaned_data.get(prefix + 'currency')
        if currency:
            cleaned_data[prefix + 'currency'] = currency.upper()
        return cleaned_data

    def settings_content_render(self, request):
        url = build_absolute_uri(self.event, 'plugins:%s:webhook' % MODULE)
        template = get_template('%s/settings.html' % MODULE)
        return template.render({'webhook_url': url, 'currency': self.configured_currency,
                                'event_currency': self.event.currency,
                                'webhook_health': webhook_health.panel(self.event, url)})

    @property
    def api_base_url(self) -> str:
        return (self.settings.get('api_base_url') or API_BASE_URL).rstrip('/')

    @property
    def payment_ui_url(self) -> str:
        return (self.settings.get('payment_ui_url') or PAYMENT_UI_URL).rstrip('/')

    @property
    def configured_currency(self) -> str:
        return (self.settings.get('currency') or CURRENCY).upper()

    def credentials(self, testmode: bool) -> tuple:
        """(app_id, api_key, webhook_secret) for live or test mode; '' where unset."""
        suffix = '_test' if testmode else ''
        return tuple(self.settings.get(k + suffix) or '' for k in ('app_id', 'api_key', 'webhook_secret'))

    def webhook_secret(self, testmode: bool) -> str:
        return self.credentials(testmode)[2]

    def client(self, testmode: bool) -> NodeRailsClient:
        app_id, api_key, _secret = self.credentials(testmode)
        # Read at call time (not imported): the real-pretix tests shrink it for timeout tests.
        return NodeRailsClient(app_id, api_key, base_url=self.api_base_url, timeout=conf.HTTP_TIMEOUT_SECONDS)

    def _configured(self, testmode: bool) -> bool:
        return all(self.credentials(testmode))

    @property
    def test_mode_message(self):
        if self._configured(True):
            return _('The NodeRails test credentials are used while this event is in test mode. '
                     'No real funds are moved.')
        return _('This event is in test mode but no NodeRails test credentials are configured, '
                 'so this payment method cannot be used.')

    # -- availability ----------------------------------------------------------------

    def is_allowed(self, request: HttpRequest, total: Decimal = None) -> bool:
        return (
            super().is_allowed(request, total)
            and self.event.currency.upper() == self.configured_currency
            and self._configured(self.event.testmode)
        )

    def order_change_allowed(self, order: Order, request: HttpRequest = None) -> bool:
        return (
            super().order_change_allowed(order, request)
            and order.event.currency.upper() == self.configured_currency
            and self._configured(order.testmode)
        )

    # -- checkout ----------------------------------------------------------------------

    def payment_form_render(self, request, total=None, order=None) -> str:
        template = get_template('%s/checkout_payment_form.html' % MODULE)
        return template.render({
            'request': request,
            'event': self.event,
            'public_name': self.public_name,
            'description': LazyI18nString(PAYMENT_DESCRIPTION),
        })

    def checkout_prepare(self, request, cart):
        due = self.cart_amount_due(request)
        if due <= 0:
            # Gift cards cover the order; pretix needs no payment method for the rest.
            messages.error(request, _('Nothing is left to pay for this order with this payment method.'))
            return False
        ref = 'cart-' + hashlib.sha256(_cart_id(request).encode()).hexdigest()[:16]
        if not self._start_session(request, due, ref, order=None, payment=None):
            return False
        # pretix does not call checkout_prepare again when the cart changes afterwards; the
        # fingerprint lets payment_is_valid_session send the customer back for a new session
        # instead of embedding a checkout for the old amount.
        request.session[SESSION_KEY] = dict(request.session[SESSION_KEY], cart=self.cart_fingerprint(request, due))
        return True

    def cart_amount_due(self, request) -> Decimal:
        """What the cart leaves for this method, computed as pretix's payment step does.

        The cart's positions and fees with this method chosen after the gift cards already in
        the cart (so a payment fee is charged on the rest only), minus what those gift cards
        take. The same computation when the checkout is prepared and when it is checked.
        """
        # Imported here: presale views import the payment provider registry at load time.
        from pretix.presale.views import get_cart, get_cart_invoice_address
        from pretix.presale.views.cart import cart_session

        positions = list(get_cart(request))
        multi_use = [p for p in cart_session(request).get('payments', []) if p.get('multi_use_supported')]
        this_method = {'provider': self.identifier, 'multi_use_supported': False, 'min_value': None,
                       'max_value': None, 'info_data': {}}
        try:
            fees = compat.get_cart_fees(self.event, request, get_cart_invoice_address(request),
                                        multi_use + [this_method], positions)
        except TaxRule.SaleNotAllowed:
            fees = []  # as pretix's payment step: the order will be refused later
        total = sum(p.price for p in positions) + sum(f.value for f in fees)
        return settlement.amount_due(total, multi_use)

    def cart_fingerprint(self, request, due: Decimal) -> str:
        """Identifies a cart's contents and what it owes, to notice a cart changed after its session.

        Prices before pretix's rounding correction: the correction is recomputed in memory on
        every cart view, so the rounded price of a line depends on when it is read.
        """
        from pretix.presale.views import get_cart

        lines = sorted('%s:%s' % (p.pk, compat.price_before_rounding(p)) for p in get_cart(request))
        return hashlib.sha256(('|'.join(lines) + '|due:%s' % due).encode()).hexdigest()

    def payment_prepare(self, request, payment):
        if not self._start_session(request, payment.amount, payment.order.code, order=payment.order, payment=payment):
            return False
        # The order exists already (a retry or a change of method on the order page), so the
        # session is bound to its payment now: a customer who pays and closes the tab without
        # confirming is still settled by the webhook or the reconciliation task. The state
        # stays "created", which pretix's confirm step requires.
        if settlement.bind_checkout(request.session[SESSION_KEY]['session_id'], payment) is not None:
            clear_checkout_state(request)
            messages.error(request, _('This crypto checkout was already used for another payment. '
                                      'Please choose the payment method again.'))
            return False
        return True

    def _start_session(self, request, amount: Decimal, ref: str, order, payment):
        """Create a NodeRails checkout session and remember it in the browser session.

        No money moves here (pretix forbids that before the order is confirmed); the
        customer pays inside the embedded checkout on the confirm page.
        """
        testmode = order.testmode if order else self.event.testmode
        try:
            session_id = self._create_session(amount, ref, order, payment, testmode)
        except NodeRailsError as exc:
            logger.warning('NodeRails checkout session could not be created: %s', exc)
            messages.error(request, _('The crypto payment service is currently unavailable. '
                                      'Please try again in a few minutes or choose another payment method.'))
            return False
        request.session[SESSION_KEY] = {
            'event': self.event.pk,
            'session_id': session_id,
            'amount': format_amount(amount, currency_places(self.event.currency)),
            'currency': self.event.currency,
            'testmode': bool(testmode),
            'payment': payment.pk if payment else None,
        }
        return True

    def _create_session(self, amount: Decimal, ref: str, order, payment, testmode: bool) -> str:
        """The session's id. The same cart (or payment) and amount send the same Idempotency-Key, so
        a create that is retried, or a customer choosing the method again, gets the same session
        back and can never pay twice; a returned session that can no longer be paid (expired,
        failed) is replaced by a new one, under a key naming the one it replaces."""
        client = self.client(testmode)
        # Each payment of an order is its own attempt; a cart has one checkout per amount.
        key_ref = '%s-%s' % (ref, payment.pk) if payment is not None else ref
        replaces = ''
        for _attempt in range(MAX_SESSION_REPLACEMENTS + 1):
            session = client.create_checkout_session(
                amount=amount, currency=self.event.currency,
                reference='%s/%s/%s' % (self.event.organizer.slug, self.event.slug, ref),
                metadata={
                    'organizer': self.event.organizer.slug,
                    'event': self.event.slug,
                    'order': order.code if order else '',
                    'payment': str(payment.pk) if payment else '',
                },
                idempotency_key=settlement.checkout_session_key(self.event, key_ref, amount, testmode, replaces),
                currency_places=currency_places(self.event.currency),
            )
            if order is not None:
                return session.session_id  # one key per payment; a new attempt is a new payment
            # Before the order exists nothing else ties this session to this event: a paid one
            # that is never placed is found and refunded through this record.
            earlier = remember_checkout(self.event, session.session_id, amount, testmode)
            if earlier is None:
                return session.session_id
            if earlier in REUSABLE_STATES and not client.get_public_session(session.session_id).has_failed:
                return session.session_id
            replaces = session.session_id  # expired, failed, or refunded for want of an order
        raise NodeRailsBadResponse('NodeRails keeps returning checkout sessions that cannot be paid.')

    def payment_is_valid_session(self, request):
        from pretix.presale.views import get_cart

        state = get_checkout_state(request, self.event)
        if state is None:
            return False
        if state.get('payment') is not None or not get_cart(request):
            # Started on the order page, or the order is placed (its cart is empty):
            # execute_payment checks the amount against the payment then.
            return True
        return state.get('cart') == self.cart_fingerprint(request, self.cart_amount_due(request))

    def checkout_confirm_render(self, request, order: Order = None, info_data: dict = None) -> str:
        state = get_checkout_state(request, self.event)
        if not state:
            return get_template('%s/error.html' % MODULE).render({'request': request})
        if not self._checkout_is_for(state, order, info_data):
            # One browser session holds one checkout: one started since in another tab, for
            # another order or payment, would show that one's amount here, and paying it would
            # pay that order instead.
            return get_template('%s/error.html' % MODULE).render({'request': request, 'other_checkout': True})
        ctx = {
            'request': request,
            'event': self.event,
            'session_id': state['session_id'],
            'iframe_url': '%s/checkout/%s' % (self.payment_ui_url, _quote_segment(state['session_id'])),
            'payment_ui_origin': origin_of(self.payment_ui_url),
            'status_url': eventreverse(self.event, 'plugins:%s:status' % MODULE),
            'change_url': self._change_url(request, order),
            'poll_interval_ms': POLL_INTERVAL_SECONDS * 1000,
            'public_name': self.public_name,
            'testmode': state.get('testmode'),
            'texts': branded_texts(),
            'logo_url': static('%s/%s' % (MODULE, LOGO_FILE)) if LOGO_FILE else '',
            'stylesheet_url': static('%s/checkout.css' % MODULE),
            'script_url': static('%s/checkout.js' % MODULE),
        }
        return get_template('%s/checkout_payment_confirm.html' % MODULE).render(ctx)

    def _change_url(self, request, order: Optional[Order]) -> str:
        """Where a customer goes to pick another payment method."""
        if order is not None:
            return eventreverse(self.event, 'presale:event.order.pay.change',
                                kwargs={'order': order.code, 'secret': order.secret})
        kwargs = {'step': 'payment'}
        match = getattr(request, 'resolver_match', None)
        namespace = match.kwargs.get('cart_namespace') if match else None
        if namespace:
            kwargs['cart_namespace'] = namespace
        return eventreverse(self.event, 'presale:event.checkout', kwargs=kwargs)

    @staticmethod
    def _checkout_is_for(state: dict, order, info_data) -> bool:
        """Whether the checkout in the browser session may be this confirm page's: pretix passes
        the order (and its payment's info) on the order page, nothing in the checkout of a cart.
        A checkout of the cart that became this order has no payment yet: execute_payment binds it."""
        started_for = state.get('payment')
        if order is None:
            return started_for is None
        if started_for is not None and not order.payments.filter(pk=started_for).exists():
            return False
        bound = (info_data or {}).get('session_id')
        return bound in (None, state['session_id'])

    def execute_payment(self, request: HttpRequest, payment: OrderPayment):
        state = get_checkout_state(request, self.event) if request is not None else None
        if not state:
            raise PaymentException(_('We could not find your crypto checkout. Please choose the payment method again.'))
        if bool(state.get('testmode')) != bool(payment.order.testmode) or state.get('payment') not in (None, payment.pk):
            # Another mode, or started for another payment of this order (a second browser tab).
            clear_checkout_state(request)
            raise PaymentException(_('Your crypto checkout does not belong to this order. Please try again.'))
        session_id = state['session_id']
        lost_to = settlement.bind_checkout(session_id, payment)
        if lost_to is not None:
            clear_checkout_state(request)
            self._refuse_checkout(payment, session_id, lost_to)
        # Pending before NodeRails is asked: if this worker dies or times out while asking,
        # the payment is still found by the reconciliation task instead of staying "created".
        settlement.mark_pending(payment)
        try:
            public = self.client(payment.order.testmode).get_public_session(session_id)
        except NodeRailsError as exc:
            logger.warning('Could not verify NodeRails session %s for %s: %s', session_id, payment.full_id, exc)
            raise PaymentException(_(
                'We could not verify your crypto payment right now. If you completed it, your order will be '
                'marked as paid automatically as soon as the payment service confirms it.'
            ))
        try:
            settled = settlement.settle(payment, settlement.Report.from_session(public))
        except LockTimeoutException:
            # Rolled back to pending: the webhook or the reconciliation confirms it; the
            # customer must not pay again.
            raise PaymentException(_('We are still processing your payment. Your order will be marked as paid '
                                     'in a few minutes.'))
        if settled.code != settlement.STILL_OPEN:
            clear_checkout_state(request)
        self._report_to_customer(settled)

    def _refuse_checkout(self, payment: OrderPayment, session_id: str, lost_to: str) -> None:
        payment.fail(log_data={'problem': 'checkout_' + lost_to, 'session_id': session_id})
        if lost_to == 'reference_conflict':
            raise PaymentException(_('This crypto checkout was already used for another payment. '
                                     'Please choose the payment method again.'))
        if lost_to == STATE_FAILED:
            raise PaymentException(_('Your crypto payment could not be assigned to this order in time. Please '
                                     'contact the event organizer, who can check and refund it.'))
        raise PaymentException(_('Your crypto payment has been refunded to you because the order was not '
                                 'placed in time. Please pay again or choose another payment method.'))

    @staticmethod
    def _report_to_customer(settled: 'settlement.Settled') -> None:
        """Nothing when the payment is confirmed; otherwise a PaymentException pretix shows."""
        if settled.code in (settlement.CONFIRMED, settlement.ALREADY_CONFIRMED):
            return
        if settled.code == settlement.CONFIRMED_NOT_PAID:
            raise PaymentException(settled.detail)  # pretix's contract: its quota message
        if settled.code == settlement.CONFIRMED_CANCELED:
            raise PaymentException(_('This order has been canceled. The event organizer has been told of your '
                                     'payment and will refund it.'))
        if settled.code == settlement.CONFIRMED_PAID_TWICE:
            raise PaymentException(_('This order had already been paid. The event organizer has been told of your '
                                     'second payment and will refund it.'))
        if settled.code == settlement.STILL_OPEN:
            raise PaymentException(_(
                'Your crypto payment has not been confirmed yet. If you completed it in your wallet, your order '
                'will be marked as paid automatically once the payment is confirmed.'
            ))
        if settled.code == 'reference_conflict':
            raise PaymentException(_('This crypto checkout was already used for another payment. '
                                     'Please choose the payment method again.'))
        if settled.code in settlement.PROBLEMS:
            raise PaymentException(_('The amount paid does not match your order. Please contact the event '
                                     'organizer, who can check and refund your payment.'))
        raise PaymentException(_('Your crypto payment was not completed. Please try again or choose '
                                 'another payment method.'))

    def reconcile(self, payment: OrderPayment) -> str:
        """Settle an open payment from NodeRails' view of its session (periodic task).

        Covers a webhook that never arrived. Raises NodeRailsError when NodeRails cannot
        be asked, LockTimeoutException when the order cannot be locked; the next run tries again.
        """
        session_id = payment.info_data.get('session_id')
        if not session_id:
            return 'no_session'
        public = self.client(payment.order.testmode).get_public_session(session_id)
        if public.status == STATUS_FAILED:
            # Not final: the customer may still pay in the hosted checkout (docs/noderails-contract.md).
            # Only open payments are reconciled, so failing this one would leave a later payment to the
            # capture webhook alone. EXPIRED ends it; a customer at Place order is told at once instead.
            return settlement.STILL_OPEN
        return settlement.settle(payment, settlement.Report.from_session(public)).code

    # -- customer and backend views -----------------------------------------------------------

    def payment_pending_render(self, request: HttpRequest, payment: OrderPayment) -> str:
        return get_template('%s/pending.html' % MODULE).render({
            'request': request, 'payment': payment, 'info': payment.info_data,
        })

    def payment_control_render(self, request: HttpRequest, payment: OrderPayment) -> str:
        info = payment.info_data
        held = settlement.held_amount(payment)
        return get_template('%s/control.html' % MODULE).render({
            'request': request, 'payment': payment, 'info': info, 'shredded': bool(info.get('_shredded')),
            'transaction': chains.transaction(info), 'hash_template': TX_HASH_TEMPLATE,
            'held_amount': held, 'held_refund': info.get('held_refund'),
            'refund_held_url': _refund_held_url(payment) if held is not None else '',
        })

    def payment_presale_render(self, payment: OrderPayment) -> str:
        """What the customer sees of a payment: method, network, amount paid, the transaction."""
        info = payment.info_data
        return get_template('%s/transaction.html' % MODULE).render({
            'public_name': self.public_name, 'transaction': chains.transaction(info),
            'amount_paid': _amount_paid(info), 'hash_template': TX_HASH_TEMPLATE,
        })

    def order_pending_mail_render(self, order: Order, payment: OrderPayment) -> str:
        """The order e-mail's payment part while the crypto payment is not confirmed yet."""
        if payment.state not in settlement.OPEN_PAYMENT_STATES:
            return ''
        url = build_absolute_uri(order.event, 'presale:event.order', kwargs={'order': order.code, 'secret': order.secret})
        # [branding] pending_email_text, in the order's language (pretix renders the mail in it).
        note = str(LazyI18nString(PENDING_EMAIL_TEXT))
        if ORDER_URL_PLACEHOLDER not in note:
            note += '\n' + ORDER_URL_PLACEHOLDER
        return note.replace(ORDER_URL_PLACEHOLDER, url)

    def render_invoice_text(self, order: Order, payment: OrderPayment) -> str:
        """The paid order's invoice names the method, the network and the transaction
        ([branding] invoice_text, in the invoice's language)."""
        tx = chains.transaction(payment.info_data) if payment is not None else None
        if order.status != Order.STATUS_PAID or tx is None:
            return super().render_invoice_text(order, payment)
        note = str(LazyI18nString(INVOICE_TEXT))
        # Replaced one by one, never str.format: the organiser's text may hold other braces.
        for placeholder, value in (('{method}', str(self.public_name)), ('{network}', tx.network),
                                   ('{tx_hash}', tx.tx_hash)):
            note = note.replace(placeholder, value)
        return '%s\r\n%s' % (super().render_invoice_text(order, payment), note)

    def cancel_payment(self, payment: OrderPayment):
        """Close the payment on our side, pending or not: the reconciliation stops asking about
        it and its checkout page stops polling. NodeRails offers no way to close a session early;
        a capture that still arrives confirms the canceled payment (settlement.CONFIRMABLE_STATES),
        which on a canceled order is money pretix shows the organiser as to be refunded."""
        settlement.close(payment)

    def refund_control_render(self, request: HttpRequest, refund: OrderRefund) -> str:
        return get_template('%s/control.html' % MODULE).render({
            'request': request, 'refund': refund, 'info': refund.info_data,
            'needs_attention': settlement.is_unclear(refund) and bool(refund.info_data.get('stalled')),
        })

    def payment_control_render_short(self, payment: OrderPayment) -> str:
        return payment.info_data.get('payment_intent_id') or payment.info_data.get('session_id') or ''

    def api_payment_details(self, payment: OrderPayment):
        info = payment.info_data
        return {k: info.get(k) for k in ('session_id', 'payment_intent_id', 'tx_hash', 'chain_id', 'status')}

    def api_refund_details(self, refund: OrderRefund):
        info = refund.info_data
        return {k: info.get(k) for k in ('refund_id', 'status')}

    def matching_id(self, payment: OrderPayment):
        return payment.info_data.get('payment_intent_id') or payment.info_data.get('session_id')

    def refund_matching_id(self, refund: OrderRefund):
        return refund.info_data.get('refund_id')

    def shred_payment_info(self, obj):
        info = obj.info_data
        kept = {k: info[k] for k in SHRED_KEEP if k in info}
        kept['_shredded'] = True
        obj.info_data = kept
        obj.save(update_fields=['info'])
        tx_hash = info.get('tx_hash')
        for entry in obj.order.all_logentries().exclude(shredded=True):
            # pretix logs the payment's info itself when it marks the order paid or the payment failed.
            if entry.action_type == settlement.LOG_ACTION or (tx_hash and tx_hash in (entry.data or '')):
                _shred_log_entry(entry, tx_hash)

    # -- refunds ---------------------------------------------------------------------------

    def payment_refund_supported(self, payment: OrderPayment) -> bool:
        return bool(payment.info_data.get('payment_intent_id'))

    def payment_partial_refund_supported(self, payment: OrderPayment) -> bool:
        return self.payment_refund_supported(payment)

    def execute_refund(self, refund: OrderRefund):
        intent_id = refund.payment.info_data.get('payment_intent_id') if refund.payment else None
        if not intent_id:
            raise PaymentException(_('This payment cannot be refunded automatically because NodeRails did not '
                                     'report a payment intent for it.'))
        if not settlement.claim_refund(refund, intent_id):
            raise PaymentException(_('This payment has already been refunded (or a refund of it is in '
                                     'progress). Please reload the order to see the current state.'))
        try:
            result = self._send_refund(refund, intent_id)
        except NodeRailsRequestRejected as exc:
            raise PaymentException(_('NodeRails rejected the refund: {message}').format(message=exc.message))
        except NodeRailsNotSent:
            raise PaymentException(_('NodeRails could not be reached. Please try the refund again later.'))
        except NodeRailsError as exc:
            # Sent, but no clear answer: it may have been carried out.
            logger.warning('NodeRails refund %s has no clear outcome (%s); left open', refund.full_id, exc)
            settlement.leave_refund_open(refund, exc.message)
            return
        settlement.record_refund(refund, result)

    def resend_refund(self, refund: OrderRefund) -> str:
        """Ask NodeRails again about a refund whose outcome is unknown (periodic task).

        The same request with the same Idempotency-Key: NodeRails answers with the refund it
        made, or makes it now if it never got it. Raises NodeRailsError when there is still no
        clear answer.
        """
        try:
            result = self._send_refund(refund, refund.info_data['payment_intent_id'])
        except NodeRailsRequestRejected as exc:
            settlement.reject_refund(refund, exc.message)
            return 'rejected'
        settlement.record_refund(refund, result)
        return 'recorded'

    def refund_held(self, payment: OrderPayment) -> Optional[str]:
        """Send back the money NodeRails took for a payment that failed (the organiser's one click).

        The same call and Idempotency-Key rules as every refund: the claim is recorded first, the key
        is derived from the intent, and an unclear answer may be followed by another click, which
        NodeRails answers with the same refund. None when there is nothing to send back; else the status.
        """
        claim = settlement.claim_held_refund(payment)
        if claim is None:
            return None
        try:
            result = self.client(payment.order.testmode).refund_payment_intent(
                claim['payment_intent_id'], amount=Decimal(claim['amount']),
                reason='pretix: failed payment %s, money held' % payment.full_id,
                idempotency_key=claim['idempotency_key'],
                currency_places=currency_places(payment.info_data.get('currency') or self.event.currency),
            )
        except NodeRailsRequestRejected as exc:
            settlement.record_held_refund(payment, 'REJECTED', error=exc.message)
            return 'REJECTED'
        except NodeRailsError as exc:
            settlement.record_held_refund(payment, settlement.REFUND_STATUS_UNKNOWN, error=exc.message)
            return settlement.REFUND_STATUS_UNKNOWN
        settlement.record_held_refund(payment, result.status, refund_id=result.refund_id)
        return result.status

    def _send_refund(self, refund: OrderRefund, intent_id: str):
        return self.client(refund.order.testmode).refund_payment_intent(
            intent_id, amount=refund.amount, reason='pretix refund %s' % refund.full_id,
            idempotency_key=settlement.refund_key(intent_id, refund),
            currency_places=currency_places(self.event.currency),
        )


def _refund_held_url(payment: OrderPayment) -> str:
    return reverse('plugins:%s:refund_held' % MODULE, kwargs={
        'organizer': payment.order.event.organizer.slug, 'event': payment.order.event.slug,
        'payment': payment.pk})


def _amount_paid(info: dict) -> str:
    """NodeRails' amount and currency, formatted as pretix formats money; '' before it reported them."""
    try:
        amount = Decimal(info.get('amount'))
    except (TypeError, ArithmeticError, ValueError):
        return ''
    currency = info.get('currency')
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        return ''
    return money_filter(amount, currency)


def _validate_currency(value: str) -> None:
    if not _CURRENCY_RE.match((value or '').upper()):
        raise ValidationError(_('Please enter a three-letter ISO 4217 currency code.'))


def _cart_id(request: HttpRequest) -> str:
    from pretix.presale.views.cart import get_or_create_cart_id
    return get_or_create_cart_id(request) or ''


def _quote_segment(value: str) -> str:
    return quote(value, safe='')


def _shred_log_entry(entry, tx_hash: Optional[str]) -> None:
    """Blank the wallet-identifying fields of a log entry: ours by their keys, and the transaction
    hash wherever it appears (pretix's own entries hold the payment's info as a JSON string)."""
    try:
        data = json.loads(entry.data or '{}')
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    for key in ('tx_hash', 'raw'):
        if data.get(key):
            data[key] = '█'
    text = json.dumps(data)
    entry.data = text.replace(tx_hash, '█') if tx_hash else text
    entry.shredded = True
    entry.save(update_fields=['data', 'shredded'])
