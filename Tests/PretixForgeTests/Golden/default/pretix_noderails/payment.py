"""pretix payment provider for NodeRails hosted crypto checkout.

Flow: checkout_prepare creates a NodeRails checkout session and keeps its id in the
customer's session; the confirm page embeds the hosted checkout; execute_payment
re-verifies the session server-side before confirming. The webhook (views.py) confirms
the same payment independently, so whichever arrives first wins and the other is a no-op.
A session paid but never turned into an order is refunded after a grace period (unclaimed.py).
"""

import hashlib
import json
import logging
import re
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Optional
from urllib.parse import quote, urlsplit

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import get_template
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _
from i18nfield.strings import LazyI18nString
from pretix.base.forms import SecretKeySettingsField
from pretix.base.models import Event, Order, OrderPayment, OrderRefund, Quota
from pretix.base.payment import BasePaymentProvider, PaymentException
from pretix.base.services.locking import LockTimeoutException
from pretix.helpers.database import OF_SELF
from pretix.multidomain.urlreverse import build_absolute_uri, eventreverse

from .client import (
    API_BASE_URL,
    HTTP_TIMEOUT_SECONDS,
    NodeRailsClient,
    NodeRailsError,
    NodeRailsRequestRejected,
    NodeRailsTimeout,
    PublicSession,
    format_amount,
)
from .models import NodeRailsReference
from .texts import (
    CONFIRM_HEADING,
    CONFIRM_INSTRUCTIONS,
    FAILURE_MESSAGE,
    LOGO_FILE,
    PAYMENT_DESCRIPTION,
    PUBLIC_NAME,
    SUCCESS_MESSAGE,
    VERBOSE_NAME,
    WAITING_MESSAGE,
)
from .unclaimed import STATE_FAILED, claim_checkout, remember_checkout

logger = logging.getLogger(__name__)

# Rendered from the forge config; organisers may override both URLs per event.
IDENTIFIER = 'noderails'
PAYMENT_UI_URL = 'https://pay.noderails.com'
CURRENCY = 'USD'
POLL_INTERVAL_MS = 3000
MODULE = 'pretix_noderails'

# Namespaced by module so two NodeRails-based plugins (or two renders of this one)
# never read each other's checkout state.
SESSION_KEY = MODULE + ':checkout'
LOG_ACTION = 'pretix.plugins.' + MODULE + '.event'

# Keys of OrderPayment.info_data we own. shred_payment_info keeps only the NodeRails
# references needed for refunds and reconciliation; the tx hash is dropped because it
# links the order to the customer's wallet on a public chain.
INFO_KEYS = ('session_id', 'payment_intent_id', 'tx_hash', 'chain_id', 'status', 'amount', 'currency', 'testmode')
SHRED_KEEP = ('session_id', 'payment_intent_id', 'status', 'amount', 'currency', 'testmode')

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


def refund_idempotency_key(intent_id: str, refund: OrderRefund) -> str:
    # Derived, not random: a retried execute_refund for the same OrderRefund must not
    # refund twice. The intent id makes it unique across events and pretix instances.
    return '%s:refund:%s:%s' % (MODULE, intent_id, refund.full_id)


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
                                'event_currency': self.event.currency})

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
        return NodeRailsClient(app_id, api_key, base_url=self.api_base_url, timeout=HTTP_TIMEOUT_SECONDS)

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
        cart_ref = 'cart-' + hashlib.sha256(_cart_id(request).encode()).hexdigest()[:16]
        if not self._start_session(request, cart['total'], cart_ref, order=None, payment=None):
            return False
        # pretix does not call checkout_prepare again when the cart changes afterwards; the
        # fingerprint lets payment_is_valid_session send the customer back for a new session
        # instead of embedding a checkout for the old amount.
        request.session[SESSION_KEY] = dict(request.session[SESSION_KEY], cart=cart_fingerprint(cart['positions']))
        return True

    def payment_prepare(self, request, payment):
        if not self._start_session(request, payment.amount, payment.order.code, order=payment.order, payment=payment):
            return False
        # The order exists already (a retry or a change of method on the order page), so the
        # session is bound to its payment now: a customer who pays and closes the tab without
        # confirming is still settled by the webhook or the reconciliation task. The state
        # stays "created", which pretix's confirm step requires.
        session_id = request.session[SESSION_KEY]['session_id']
        self._link(session_id, payment)
        payment.info_data = dict(payment.info_data, session_id=session_id)
        payment.save(update_fields=['info'])
        return True

    def _start_session(self, request, amount: Decimal, ref: str, order, payment):
        """Create a NodeRails checkout session and remember it in the browser session.

        No money moves here (pretix forbids that before the order is confirmed); the
        customer pays inside the embedded checkout on the confirm page.
        """
        testmode = order.testmode if order else self.event.testmode
        metadata = {
            'organizer': self.event.organizer.slug,
            'event': self.event.slug,
            'order': order.code if order else '',
            'payment': str(payment.pk) if payment else '',
        }
        try:
            session = self.client(testmode).create_checkout_session(
                amount=amount, currency=self.event.currency,
                reference='%s/%s/%s' % (self.event.organizer.slug, self.event.slug, ref),
                metadata=metadata, idempotency_key=str(uuid.uuid4()),
                currency_places=currency_places(self.event.currency),
            )
        except NodeRailsError as exc:
            logger.warning('NodeRails checkout session could not be created: %s', exc)
            messages.error(request, _('The crypto payment service is currently unavailable. '
                                      'Please try again in a few minutes or choose another payment method.'))
            return False
        if order is None:
            # Before the order exists nothing else ties this session to this event: a
            # paid one that is never placed is found and refunded through this record.
            remember_checkout(self.event, session.session_id, amount, testmode)
        request.session[SESSION_KEY] = {
            'event': self.event.pk,
            'session_id': session.session_id,
            'amount': format_amount(amount, currency_places(self.event.currency)),
            'currency': self.event.currency,
            'testmode': bool(testmode),
            'payment': payment.pk if payment else None,
        }
        return True

    def payment_is_valid_session(self, request):
        # Imported here like _cart_id: presale views import the provider registry at load time.
        from pretix.presale.views import get_cart

        state = get_checkout_state(request, self.event)
        if state is None:
            return False
        # Once the order is placed the cart is empty: execute_payment checks the amount then.
        positions = get_cart(request) if state.get('payment') is None else None
        return not positions or state.get('cart') == cart_fingerprint(positions)

    def checkout_confirm_render(self, request, order: Order = None, info_data: dict = None) -> str:
        state = get_checkout_state(request, self.event)
        if not state:
            return get_template('%s/error.html' % MODULE).render({'request': request})
        ctx = {
            'request': request,
            'event': self.event,
            'session_id': state['session_id'],
            'iframe_url': '%s/checkout/%s' % (self.payment_ui_url, _quote_segment(state['session_id'])),
            'payment_ui_origin': origin_of(self.payment_ui_url),
            'status_url': eventreverse(self.event, 'plugins:%s:status' % MODULE),
            'change_url': self._change_url(request, order),
            'poll_interval_ms': POLL_INTERVAL_MS,
            'public_name': self.public_name,
            'testmode': state.get('testmode'),
            'texts': branded_texts(),
            'logo_url': static('%s/%s' % (MODULE, LOGO_FILE)) if LOGO_FILE else '',
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

    def execute_payment(self, request: HttpRequest, payment: OrderPayment):
        state = get_checkout_state(request, self.event) if request is not None else None
        if not state:
            raise PaymentException(_('We could not find your crypto checkout. Please choose the payment method again.'))
        if bool(state.get('testmode')) != bool(payment.order.testmode):
            clear_checkout_state(request)
            raise PaymentException(_('Your crypto checkout does not belong to this order. Please try again.'))
        if state.get('payment') not in (None, payment.pk):
            # Started for another payment of this order (e.g. a second browser tab).
            clear_checkout_state(request)
            raise PaymentException(_('Your crypto checkout does not belong to this order. Please try again.'))
        session_id = state['session_id']
        self._bind_checkout(request, session_id, payment)
        # Pending before NodeRails is asked: if this worker dies or times out while asking,
        # the payment is still found by the reconciliation task instead of staying "created".
        self._mark_pending(payment, session_id)
        try:
            public = self.client(payment.order.testmode).get_public_session(session_id)
        except NodeRailsError as exc:
            logger.warning('Could not verify NodeRails session %s for %s: %s', session_id, payment.full_id, exc)
            raise PaymentException(_(
                'We could not verify your crypto payment right now. If you completed it, your order will be '
                'marked as paid automatically as soon as the payment service confirms it.'
            ))
        return self._settle_from_session(request, payment, public)

    def _bind_checkout(self, request, session_id: str, payment: OrderPayment) -> None:
        """Bind the cart's session to this payment, unless its refund has begun.

        The claim and the reference commit together, under the payment's and the checkout's
        row locks, so that either Place order or the unclaimed-payment refund wins, never
        both (unclaimed.py).
        """
        with transaction.atomic():
            OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
            lost_to = claim_checkout(session_id, self.event)
            if lost_to is None:
                self._link(session_id, payment)
        if lost_to is None:
            return
        clear_checkout_state(request)
        payment.fail(log_data={'problem': 'checkout_' + lost_to, 'session_id': session_id})
        if lost_to == STATE_FAILED:
            raise PaymentException(_('Your crypto payment could not be assigned to this order in time. Please '
                                     'contact the event organizer, who can check and refund it.'))
        raise PaymentException(_('Your crypto payment has been refunded to you because the order was not '
                                 'placed in time. Please pay again or choose another payment method.'))

    def _settle_from_session(self, request, payment: OrderPayment, public: PublicSession):
        if public.has_failed:
            clear_checkout_state(request)
            payment.fail(info=self._info(payment, public), log_data={'session_status': public.status})
            raise PaymentException(_('Your crypto payment was not completed. Please try again or choose '
                                     'another payment method.'))
        if not public.is_paid:
            self._mark_pending(payment, public.session_id, public)
            raise PaymentException(_(
                'Your crypto payment has not been confirmed yet. If you completed it in your wallet, your order '
                'will be marked as paid automatically once the payment is confirmed.'
            ))
        problem = amount_problem(payment, public.amount, public.currency)
        if problem:
            clear_checkout_state(request)
            payment.order.log_action(LOG_ACTION, data={'problem': problem, 'session_id': public.session_id,
                                                       'amount': str(public.amount), 'currency': public.currency})
            payment.fail(info=self._info(payment, public), log_data={'problem': problem})
            raise PaymentException(_('The amount paid does not match your order. Please contact the event '
                                     'organizer, who can check and refund your payment.'))
        if public.payment_intent_id:
            self._link(public.payment_intent_id, payment)
        payment.info_data = self._info(payment, public)
        clear_checkout_state(request)
        self._confirm(payment)
        return None

    def _confirm(self, payment: OrderPayment) -> None:
        try:
            payment.confirm()
        except Quota.QuotaExceededException as exc:
            # pretix's contract: show the quota message. The payment itself is confirmed.
            raise PaymentException(str(exc))
        except LockTimeoutException:
            # The webhook will confirm it; the customer should not pay again.
            self._mark_pending(payment, payment.info_data.get('session_id'))
            raise PaymentException(_('We are still processing your payment. Your order will be marked as paid '
                                     'in a few minutes.'))

    def _mark_pending(self, payment: OrderPayment, session_id: str, public: PublicSession = None) -> None:
        with transaction.atomic():
            locked = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
            if locked.state not in (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING):
                return  # settled meanwhile (webhook, reconciliation): nothing to record
            info = self._info(locked, public)
            info['session_id'] = session_id
            locked.info_data = info
            locked.state = OrderPayment.PAYMENT_STATE_PENDING
            locked.save(update_fields=['info', 'state'])
        payment.refresh_from_db()

    def _info(self, payment: OrderPayment, public: Optional[PublicSession]) -> dict:
        info = {k: v for k, v in payment.info_data.items() if k in INFO_KEYS}
        info['testmode'] = bool(payment.order.testmode)
        if public is not None:
            info.update({
                'session_id': public.session_id,
                'payment_intent_id': public.payment_intent_id or info.get('payment_intent_id'),
                'tx_hash': public.tx_hash or info.get('tx_hash'),
                'chain_id': public.chain_id if public.chain_id is not None else info.get('chain_id'),
                'status': public.status,
                'amount': str(public.amount) if public.amount is not None else None,
                'currency': public.currency,
            })
        return info

    def _link(self, reference: str, payment: OrderPayment) -> None:
        """Bind a NodeRails id to this payment, once: a paid session can pay one order only."""
        try:
            with transaction.atomic():
                # The payment row first, as the webhook does. PostgreSQL checks the new row's
                # foreign key at commit with a share lock on the payment; a webhook holding the
                # payment while inserting the same reference would otherwise deadlock with us.
                OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=payment.pk)
                ref, created = NodeRailsReference.objects.get_or_create(
                    reference=reference, defaults={'order': payment.order, 'payment': payment},
                )
        except IntegrityError:
            ref, created = NodeRailsReference.objects.get(reference=reference), False
        if not created and ref.payment_id != payment.pk:
            raise PaymentException(_('This crypto checkout was already used for another payment. '
                                     'Please choose the payment method again.'))

    def reconcile(self, payment: OrderPayment) -> str:
        """Settle an open payment from NodeRails' view of its session (periodic task).

        Covers a webhook that never arrived. Raises NodeRailsError when NodeRails cannot
        be asked; the next run tries again.
        """
        session_id = payment.info_data.get('session_id')
        if not session_id:
            return 'no_session'
        public = self.client(payment.order.testmode).get_public_session(session_id)
        with transaction.atomic():
            locked = OrderPayment.objects.select_for_update(of=OF_SELF).select_related('order').get(pk=payment.pk)
            if locked.state not in (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING):
                return 'settled'
            if public.has_failed:
                locked.fail(info=self._info(locked, public), log_data={'session_status': public.status})
                return 'failed'
            if not public.is_paid:
                return 'open'
            problem = amount_problem(locked, public.amount, public.currency)
            if problem:
                locked.order.log_action(LOG_ACTION, data={'problem': problem, 'session_id': public.session_id})
                locked.fail(info=self._info(locked, public), log_data={'problem': problem})
                return problem
            if public.payment_intent_id:
                try:
                    self._link(public.payment_intent_id, locked)
                except PaymentException:
                    return 'reference_conflict'
            locked.info_data = self._info(locked, public)
            try:
                locked.confirm()
            except Quota.QuotaExceededException:
                pass  # confirmed, order stays unpaid; pretix informs the organiser
        return 'confirmed'

    # -- customer and backend views -----------------------------------------------------------

    def payment_pending_render(self, request: HttpRequest, payment: OrderPayment) -> str:
        return get_template('%s/pending.html' % MODULE).render({
            'request': request, 'payment': payment, 'info': payment.info_data,
        })

    def payment_control_render(self, request: HttpRequest, payment: OrderPayment) -> str:
        info = payment.info_data
        return get_template('%s/control.html' % MODULE).render({
            'request': request, 'payment': payment, 'info': info, 'shredded': bool(info.get('_shredded')),
        })

    def refund_control_render(self, request: HttpRequest, refund: OrderRefund) -> str:
        return get_template('%s/control.html' % MODULE).render({
            'request': request, 'refund': refund, 'info': refund.info_data,
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
        for entry in obj.order.all_logentries().filter(action_type=LOG_ACTION).exclude(shredded=True):
            _shred_log_entry(entry)

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
        self._claim_refund(refund, intent_id)
        try:
            result = self.client(refund.order.testmode).refund_payment_intent(
                intent_id, amount=refund.amount, reason='pretix refund %s' % refund.full_id,
                idempotency_key=refund_idempotency_key(intent_id, refund),
                currency_places=currency_places(self.event.currency),
            )
        except NodeRailsRequestRejected as exc:
            raise PaymentException(_('NodeRails rejected the refund: {message}').format(message=exc.message))
        except NodeRailsTimeout:
            # NodeRails may have carried the refund out. Failing it would invite a second
            # refund under a new Idempotency-Key; leave it open instead (pretix shows it as
            # "saved, not yet fully executed") for the payment.refunded webhook to complete.
            logger.warning('NodeRails refund %s timed out; left open for its webhook', refund.full_id)
            refund.info_data = dict(refund.info_data, status='UNKNOWN')
            refund.save(update_fields=['info'])
            return
        except NodeRailsError:
            raise PaymentException(_('NodeRails could not be reached. Please try the refund again later.'))
        self._record_refund(refund, intent_id, result)

    def _claim_refund(self, refund: OrderRefund, intent_id: str) -> None:
        """Reserve the refund's amount on its payment before NodeRails is asked.

        Two refunds requested at once (a double click, two organisers) both pass pretix's
        refundable-amount check. Serialised on the payment row, the second one sees the
        first one's claim and is refused here instead of sending NodeRails a second refund.
        The claim commits before the NodeRails call, so no lock is held while it runs, and a
        retry of the same OrderRefund passes its own claim and resends the same key.
        """
        with transaction.atomic():
            locked = OrderPayment.objects.select_for_update(of=OF_SELF).get(pk=refund.payment_id)
            others = OrderRefund.objects.filter(payment=locked).exclude(pk=refund.pk)
            claimed = sum((r.amount for r in others if _claims_payment(r)), Decimal('0.00'))
            if claimed + refund.amount > locked.amount:
                raise PaymentException(_('This payment has already been refunded (or a refund of it is in '
                                         'progress). Please reload the order to see the current state.'))
            refund.info_data = dict(refund.info_data, payment_intent_id=intent_id,
                                    idempotency_key=refund_idempotency_key(intent_id, refund))
            refund.save(update_fields=['info'])

    def _record_refund(self, refund: OrderRefund, intent_id: str, result) -> None:
        """Store NodeRails' answer; done, or in transit until the payment.refunded webhook."""
        with transaction.atomic():
            # The webhook may have settled this refund while NodeRails was answering us;
            # done() twice would log the refund twice.
            locked = OrderRefund.objects.select_for_update(of=OF_SELF).select_related('order', 'payment').get(
                pk=refund.pk)
            locked.info_data = dict(locked.info_data, refund_id=result.refund_id, status=result.status,
                                    payment_intent_id=intent_id)
            if locked.state not in (OrderRefund.REFUND_STATE_CREATED, OrderRefund.REFUND_STATE_TRANSIT):
                locked.save(update_fields=['info'])
            elif result.status == 'COMPLETED':
                locked.save(update_fields=['info'])
                locked.done()
            else:
                # Settled on-chain later; the payment.refunded webhook marks it done.
                locked.state = OrderRefund.REFUND_STATE_TRANSIT
                locked.save(update_fields=['info', 'state'])
        refund.refresh_from_db()


def _claims_payment(refund: OrderRefund) -> bool:
    """Whether a refund takes money from its payment: sent to NodeRails (claimed), on its
    way, done, or reported by NodeRails itself (external)."""
    if refund.state == OrderRefund.REFUND_STATE_CREATED:
        return bool(refund.info_data.get('idempotency_key'))
    return refund.state in (OrderRefund.REFUND_STATE_TRANSIT, OrderRefund.REFUND_STATE_DONE,
                            OrderRefund.REFUND_STATE_EXTERNAL)


def cart_fingerprint(positions) -> str:
    """Identifies a cart's contents and prices, to notice a cart changed after its session."""
    items = sorted('%s:%s' % (p.pk, p.price) for p in positions)
    return hashlib.sha256('|'.join(items).encode()).hexdigest()


def amount_problem(payment: OrderPayment, amount: Optional[Decimal], currency: Optional[str]) -> Optional[str]:
    """Why NodeRails' amount/currency cannot confirm ``payment``; None when they match."""
    expected_currency = payment.order.event.currency.upper()
    if amount is None or not currency:
        return 'amount_missing'
    if currency.upper() != expected_currency:
        return 'currency_mismatch'
    # Exact comparison (12.5 == 12.50 as Decimals): no rounding in the payer's favour.
    if amount != payment.amount:
        return 'amount_mismatch'
    return None


def _validate_currency(value: str) -> None:
    if not _CURRENCY_RE.match((value or '').upper()):
        raise ValidationError(_('Please enter a three-letter ISO 4217 currency code.'))


def _cart_id(request: HttpRequest) -> str:
    from pretix.presale.views.cart import get_or_create_cart_id
    return get_or_create_cart_id(request) or ''


def _quote_segment(value: str) -> str:
    return quote(value, safe='')


def _shred_log_entry(entry) -> None:
    """Blank the wallet-identifying fields of one of our log entries."""
    try:
        data = json.loads(entry.data or '{}')
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    for key in ('tx_hash', 'raw'):
        if data.get(key):
            data[key] = '█'
    entry.data = json.dumps(data)
    entry.shredded = True
    entry.save(update_fields=['data', 'shredded'])
