"""Webhook payload extractors: pull the event type, ids, amount and currency out of a
NodeRails webhook body.

No Django import, so tests/test_payload.py runs without pretix. The view decides what
to do with a parsed event; this module only reads the JSON defensively (the body is
authenticated by then, but still never trusted to have the right shape).
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

from . import conf
from .client import parse_amount, parse_int

ACTION_CONFIRM = 'confirm'
ACTION_REFUND = 'refund'
ACTION_FAIL = 'fail'
# The customer's approval when the plugin is configured to wait for the capture: logged only.
ACTION_APPROVAL = 'approval'
ACTION_IGNORE = 'ignore'

# The customer approved the payment; the funds are not taken yet ([webhook] confirm_on).
APPROVAL_EVENT_TYPES = frozenset({'payment.authorized', 'payment_intent.authorized', 'checkout_session.completed'})

# NodeRails documents both the payment.* and the payment_intent.* spelling.
_ACTIONS = {
    'payment.authorized': ACTION_APPROVAL,
    'payment.captured': ACTION_CONFIRM,
    'payment_intent.authorized': ACTION_APPROVAL,
    'payment_intent.captured': ACTION_CONFIRM,
    'checkout_session.completed': ACTION_APPROVAL,
    'payment.refunded': ACTION_REFUND,
    'payment_intent.refunded': ACTION_REFUND,
    'payment.failed': ACTION_FAIL,
    'payment_intent.failed': ACTION_FAIL,
    'payment_intent.cancelled': ACTION_FAIL,
    'checkout_session.expired': ACTION_FAIL,
}
HANDLED_EVENT_TYPES = frozenset(_ACTIONS)

# Ids are stored in a CharField(190) and shown in the backend: anything longer or with
# control characters is not an id NodeRails issues.
MAX_ID_LENGTH = 190


class PayloadError(ValueError):
    """The body is not a NodeRails event we can read."""


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    type: str
    payment_intent_id: Optional[str]
    checkout_session_id: Optional[str]
    refund_id: Optional[str]
    status: Optional[str]
    amount: Optional[Decimal]
    currency: Optional[str]
    chain_id: Optional[int]
    tx_hash: Optional[str]

    @property
    def action(self) -> str:
        return action_for(self.type)

    @property
    def references(self) -> tuple:
        """NodeRails ids that may point at a pretix payment, most specific first."""
        return tuple(r for r in (self.payment_intent_id, self.checkout_session_id) if r)


def approval_confirms() -> bool:
    """Whether the customer's approval confirms a payment ([webhook] confirm_on), on every path: the
    webhook, Place order and the reconciliation. Read at call time, like conf's other values."""
    return 'authorized' in conf.CONFIRM_ON


def action_for(event_type: str) -> str:
    action = _ACTIONS.get(event_type, ACTION_IGNORE)
    if action == ACTION_APPROVAL and approval_confirms():
        return ACTION_CONFIRM
    return action


def parse_event(body: bytes) -> WebhookEvent:
    """Parse a raw webhook body; raises PayloadError when it is not a readable event."""
    document = _load_object(body)
    event_id = _clean_id(document.get('id'))
    event_type = document.get('type')
    if not event_id:
        raise PayloadError('event id missing')
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError('event type missing')
    data = document.get('data')
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PayloadError('event data is not an object')
    return WebhookEvent(
        event_id=event_id,
        type=event_type,
        payment_intent_id=extract_payment_intent_id(event_type, data),
        checkout_session_id=extract_checkout_session_id(event_type, data),
        refund_id=_clean_id(data.get('refundId')),
        status=_upper(data.get('status')),
        amount=parse_amount(data.get('amount')),
        currency=_upper(data.get('currency')),
        chain_id=parse_int(data.get('chainId')),
        tx_hash=_clean_id(data.get('txHash')),
    )


def extract_payment_intent_id(event_type: str, data: dict) -> Optional[str]:
    """paymentIntentId, or data.id on payment events whose object is the intent."""
    explicit = _clean_id(data.get('paymentIntentId'))
    if explicit:
        return explicit
    if event_type.startswith(('payment.', 'payment_intent.')):
        return _clean_id(data.get('id'))
    return None


def extract_checkout_session_id(event_type: str, data: dict) -> Optional[str]:
    """checkoutSessionId, or data.id on checkout_session events."""
    explicit = _clean_id(data.get('checkoutSessionId'))
    if explicit:
        return explicit
    if event_type.startswith('checkout_session.'):
        return _clean_id(data.get('id'))
    return None


def _load_object(body: bytes) -> dict:
    try:
        # parse_float=Decimal: amounts sent as JSON numbers must not pass through float.
        document = json.loads(bytes(body).decode('utf-8'), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError('body is not JSON') from exc
    if not isinstance(document, dict):
        raise PayloadError('body is not a JSON object')
    return document


def _clean_id(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


def _upper(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    return value.strip().upper() or None
