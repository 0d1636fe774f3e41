"""Webhook health: what the provider's settings page shows about NodeRails' deliveries, and the
organiser's notification when they keep failing verification.

A shop whose webhook is misconfigured still sells (Place order and the reconciliation confirm
payments), so nobody notices until money paid without an order has nowhere to go. This module
keeps, per mode (live, test), the last verified delivery and the refused ones of the last 24
hours, and tells the organiser once per episode of refusals: from the first refused delivery
after a verified one (or ever) until the next verified one.

Only counts, times, event types and refusal reasons are kept, never a body, a signature or a
secret, in the event's settings (one JSON value per mode). Refused deliveries come from anyone
who can reach the URL, so what they may write is bounded (REFUSED_WRITES_PER_HOUR).
"""

import time
from datetime import datetime, timezone

from django.utils.translation import gettext_lazy as _
from pretix.base.models import LogEntry, Order, OrderPayment
from pretix.base.notifications import Notification, NotificationType
from pretix.helpers.urls import build_absolute_uri

from . import compat, webhook as signing
from .conf import IDENTIFIER, MODULE, TOLERANCE_SECONDS

# Logged on the event when an episode of refused deliveries begins; the notification type's action.
LOG_REFUSED = 'pretix.plugins.' + MODULE + '.webhooks_refused'
# The settings page counts refused deliveries over this many hourly buckets.
WINDOW_HOURS = 24
# Each refused delivery costs one settings write; an unauthenticated sender can post as many as
# it likes, so after this many in one hour (per mode) the rest are not counted, only shown as "at
# least". NodeRails itself redelivers an event 6 times over a day, far below it.
REFUSED_WRITES_PER_HOUR = 60
# A verified delivery's time is written at most this often: the page shows it to the minute, and
# busy shops receive many webhooks a minute.
VERIFIED_RESOLUTION_SECONDS = 60

CAUSE_SECRET = 'secret'
CAUSE_CLOCK = 'clock'
CAUSE_HEADERS = 'headers'
_CAUSES = {
    signing.REASON_SIGNATURE_MISMATCH: CAUSE_SECRET,
    signing.REASON_STALE_TIMESTAMP: CAUSE_CLOCK,
    signing.REASON_FUTURE_TIMESTAMP: CAUSE_CLOCK,
}
# Shown in this order; a freshness verdict means the signature matched, so it says the most.
CAUSE_ORDER = (CAUSE_CLOCK, CAUSE_SECRET, CAUSE_HEADERS)


def cause_text(cause: str) -> str:
    if cause == CAUSE_SECRET:
        return _('the signature does not match: the signing secret in these settings is not the one '
                 'NodeRails signs with')
    if cause == CAUSE_CLOCK:
        return _("the timestamp is outside the {minutes}-minute window: check this server's clock").format(
            minutes=max(1, TOLERANCE_SECONDS // 60))
    return _('the signature headers are missing or malformed: the delivery did not come from NodeRails, '
             'or something in front of pretix removes its x-noderails headers')


def cause_of(reason: str) -> str:
    """The plain-words cause for webhook.verify_signature's reason code."""
    return _CAUSES.get(reason, CAUSE_HEADERS)


def mode_name(testmode: bool) -> str:
    return 'test' if testmode else 'live'


def _key(testmode: bool) -> str:
    return 'payment_%s__webhook_health_%s' % (IDENTIFIER, mode_name(testmode))


def _load(event, testmode: bool) -> dict:
    data = event.settings.get(_key(testmode), as_type=dict, default=None)
    return data if isinstance(data, dict) else {}


def _save(event, testmode: bool, data: dict) -> None:
    event.settings.set(_key(testmode), data)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _parse_time(value):
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _hour() -> int:
    return int(time.time() // 3600)


# -- recording ---------------------------------------------------------------------------------


def record_verified(event, testmode: bool, event_type: str) -> None:
    """A delivery verified with this mode's secret; it ends an episode of refusals."""
    data = _load(event, testmode)
    last = _parse_time(data.get('verified_at'))
    recent = last is not None and (datetime.now(timezone.utc) - last).total_seconds() < VERIFIED_RESOLUTION_SECONDS
    if recent and data.get('verified_type') == event_type and not data.get('episode'):
        return
    data.update(verified_at=_now_iso(), verified_type=str(event_type)[:100], episode=None)
    _save(event, testmode, data)


def record_refused(event, testmode: bool, reason: str) -> None:
    """A delivery no secret verified; the first one of an episode notifies the organiser."""
    data = _load(event, testmode)
    hour = _hour()
    buckets = {h: counts for h, counts in (data.get('refused') or {}).items()
               if _is_int(h) and int(h) > hour - WINDOW_HOURS and isinstance(counts, dict)}
    current = buckets.setdefault(str(hour), {})
    if sum(v for v in current.values() if isinstance(v, int)) >= REFUSED_WRITES_PER_HOUR:
        return
    cause = cause_of(reason)
    current[cause] = int(current.get(cause) or 0) + 1
    data['refused'] = buckets
    starts_episode = not data.get('episode')
    if starts_episode:
        data['episode'] = _now_iso()
    _save(event, testmode, data)
    if starts_episode:
        event.log_action(LOG_REFUSED, data={'mode': mode_name(testmode), 'cause': cause})


def _is_int(value) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


# -- the settings page --------------------------------------------------------------------------


def panel(event, webhook_url: str) -> list:
    """Per mode, what the settings page shows: last verified delivery, refusals, warnings."""
    return [_mode_panel(event, testmode, webhook_url) for testmode in (False, True)]


def _mode_panel(event, testmode: bool, webhook_url: str) -> dict:
    data = _load(event, testmode)
    hour = _hour()
    totals = {}
    capped = False
    for h, counts in (data.get('refused') or {}).items():
        if not _is_int(h) or int(h) <= hour - WINDOW_HOURS or not isinstance(counts, dict):
            continue
        capped = capped or sum(v for v in counts.values() if isinstance(v, int)) >= REFUSED_WRITES_PER_HOUR
        for cause, count in counts.items():
            if isinstance(count, int):
                totals[cause] = totals.get(cause, 0) + count
    verified_at = _parse_time(data.get('verified_at'))
    return {
        'testmode': testmode,
        'verified_at': verified_at,
        'verified_type': data.get('verified_type') or '',
        'refused': sum(totals.values()),
        'refused_capped': capped,
        'causes': [{'count': totals[c], 'text': cause_text(c)} for c in CAUSE_ORDER if totals.get(c)],
        'unreachable': verified_at is None and _confirmed_without_webhook(event, testmode),
        'webhook_url': webhook_url,
    }


def _confirmed_without_webhook(event, testmode: bool) -> bool:
    """Payments of this mode were confirmed, and no webhook of it was ever applied to an order."""
    from .settlement import LOG_ACTION
    orders = Order.objects.filter(event=event, testmode=testmode)
    confirmed = OrderPayment.objects.filter(
        order__in=orders, provider=IDENTIFIER,
        state__in=(OrderPayment.PAYMENT_STATE_CONFIRMED, OrderPayment.PAYMENT_STATE_REFUNDED))
    if not confirmed.exists():
        return False
    # Webhooks applied before this panel existed left their event id on the order's log.
    applied = LogEntry.objects.filter(
        event=event, action_type=LOG_ACTION, data__contains='"event_id"', object_id__in=orders.values('pk'))
    return not applied.exists()


# -- the notification -------------------------------------------------------------------------


class WebhooksRefusedNotificationType(NotificationType):
    action_type = LOG_REFUSED
    verbose_name = _('NodeRails webhooks failing verification')

    @property
    def required_permission(self):
        return compat.payment_settings_permission()

    def build_notification(self, logentry):
        data = logentry.parsed_data if isinstance(logentry.parsed_data, dict) else {}
        mode = _('test mode') if data.get('mode') == 'test' else _('live mode')
        url = settings_url(logentry.event)
        notification = Notification(
            event=logentry.event,
            title=_('NodeRails webhooks are failing verification ({mode})').format(mode=mode),
            detail=refused_text(data),
            url=url,
        )
        notification.add_attribute(_('Event'), logentry.event.name)
        notification.add_action(_('Open the NodeRails settings'), url)
        return notification


def refused_text(data: dict) -> str:
    """What the log entry and the notification say: the cause and what to do."""
    mode = _('test mode') if data.get('mode') == 'test' else _('live mode')
    return _('pretix refused a NodeRails webhook delivery for {mode}: {cause}. Until this is fixed, pretix '
             'learns of payments and refunds only when it asks NodeRails itself, which is slower. The NodeRails '
             'settings of this event show how many deliveries were refused. You are told once until a '
             'delivery is verified again.').format(mode=mode, cause=cause_text(data.get('cause') or ''))


def settings_url(event) -> str:
    return build_absolute_uri('control:event.settings.payment.provider', kwargs={
        'organizer': event.organizer.slug, 'event': event.slug, 'provider': IDENTIFIER})


def notification_types(event):
    return (WebhooksRefusedNotificationType(event),)
