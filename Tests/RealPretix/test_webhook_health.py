"""Webhook health on the provider's settings page, the organiser's notification when webhooks fail
verification, and verification with the secret of the payment's own mode."""

import html
import json
import re

import pytest
from django.core import mail
from django.utils.html import strip_tags
from django_scopes import scopes_disabled
from realpretix import IDENTIFIER, LIVE, ORG, TEST, WEBHOOK_URL_PATH, configure_provider, plugin

pytestmark = pytest.mark.django_db

WRONG_SECRET = 'whsec_not_the_one_noderails_uses'


def settings_page(admin, shop):
    response = admin.get('/control/event/%s/%s/settings/payment/%s' % (ORG, shop.event.slug, IDENTIFIER))
    assert response.status_code == 200
    return response.content.decode()


def mode_section(page, mode):
    """The plain text of one mode's part of the health panel."""
    match = re.search(r'data-noderails-webhook-mode="%s">(.*?)</li>\s*(?:<li|</ul>)' % mode, page, re.S)
    assert match, 'no %s section in the webhook health panel' % mode
    return re.sub(r'\s+', ' ', html.unescape(strip_tags(match.group(1))))


def subscribe(admin_email, event, action_type):
    from pretix.base.models import NotificationSetting, User
    with scopes_disabled():
        user = User.objects.get(email=admin_email)
        NotificationSetting.objects.create(user=user, action_type=action_type, event=event, method='mail',
                                           enabled=True)


def notices():
    return [m for m in mail.outbox if m.to == ['admin@example.org']]


def test_wrongly_signed_webhooks_are_counted_with_their_cause_and_notified_once(
        customer, sim, admin, django_capture_on_commit_callbacks):
    health = plugin('webhook_health')
    order, payment, sid = customer.pending_order()
    shop = customer.shop
    subscribe('admin@example.org', shop.event, health.LOG_REFUSED)
    mail.outbox.clear()

    signatures = []
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            [d] = sim.deliver('payment.captured', sid, secret=WRONG_SECRET, apply_state=False)
        assert d.status == 400, d.response_body
        signatures.append(d.request_headers['x-noderails-signature'])
    assert len(notices()) == 1, [m.subject for m in mail.outbox]
    notice = notices()[0]
    assert 'NodeRails webhooks are failing verification (live mode)' in notice.subject
    assert 'signing secret in these settings is not the one NodeRails signs with' in notice.body

    live = mode_section(settings_page(admin, shop), 'live')
    assert 'Deliveries refused in the last 24 hours: 5.' in live, live
    assert ('5 × the signature does not match: the signing secret in these settings is not the one NodeRails '
            'signs with') in live, live
    assert 'No verified webhook has arrived yet.' in live
    assert 'refused' not in mode_section(settings_page(admin, shop), 'test')
    # Nothing secret is kept: no secret, signature or body, only counts, times and event types.
    shop.event.settings.flush()
    stored = json.dumps([shop.event.settings.get('payment_%s__webhook_health_%s' % (IDENTIFIER, mode), as_type=dict)
                         for mode in ('live', 'test')])
    assert '"signature_mismatch"' not in stored and '"secret": 5' in stored, stored
    for secret_text in [WRONG_SECRET, LIVE.secret, sid] + signatures:
        assert secret_text not in stored

    # One stale delivery signed with the right secret: the clock is named as the cause.
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver('payment.captured', sid, timestamp_offset=-600, apply_state=False)
    assert d.status == 400
    live = mode_section(settings_page(admin, shop), 'live')
    assert "1 × the timestamp is outside the 5-minute window: check this server's clock" in live, live
    assert 'Deliveries refused in the last 24 hours: 6.' in live
    assert len(notices()) == 1, 'a second notification within the same episode'

    # A verified delivery ends the episode; the next refused one is news again.
    with django_capture_on_commit_callbacks(execute=True):
        [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200
    live = mode_section(settings_page(admin, shop), 'live')
    assert 'Last verified webhook: payment.captured at' in live, live
    with django_capture_on_commit_callbacks(execute=True):
        sim.deliver('payment.refunded', sid, secret=WRONG_SECRET, apply_state=False)
    assert len(notices()) == 2


def test_refused_deliveries_write_a_bounded_number_of_times(configured, sim, admin, monkeypatch):
    """An unauthenticated sender can post as many refused deliveries as it likes: each hour, only
    REFUSED_WRITES_PER_HOUR of them are written; the page then says "at least"."""
    health = plugin('webhook_health')
    # Every delivery falls in one hourly bucket, also when the run crosses a full hour (a run that
    # crossed 07:00 split its 65 deliveries over two buckets, neither of them full).
    hour = health._hour()
    monkeypatch.setattr(health, '_hour', lambda: hour)
    shop = configured
    with scopes_disabled():
        before = shop.event.all_logentries().filter(action_type=health.LOG_REFUSED).count()
    limit = health.REFUSED_WRITES_PER_HOUR
    document = {'id': 'evt_forged', 'type': 'payment.captured', 'data': {'checkoutSessionId': 'cs_forged'}}
    for _ in range(limit + 5):
        [d] = sim.deliver('payment.captured', document=document, secret=WRONG_SECRET, times=1)
        assert d.status == 400
    live = mode_section(settings_page(admin, shop), 'live')
    assert 'Deliveries refused in the last 24 hours: at least %d.' % limit in live, live
    with scopes_disabled():
        assert shop.event.all_logentries().filter(action_type=health.LOG_REFUSED).count() == before + 1


def test_payments_confirmed_by_polling_without_any_webhook_show_the_unreachable_warning(customer, sim, admin):
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid)  # no webhook: the simulator never reaches pretix
    r, order = customer.place_order()
    customer.complete(r)
    with scopes_disabled():
        order.refresh_from_db()
    assert order.status == 'p'
    live = mode_section(settings_page(admin, customer.shop), 'live')
    registered = re.search(r'NodeRails cannot reach your webhook URL: register (\S+) in the NodeRails dashboard\.',
                           live)
    assert registered and registered.group(1).endswith(WEBHOOK_URL_PATH), live
    assert 'cannot reach' not in mode_section(settings_page(admin, customer.shop), 'test')

    [d] = sim.deliver('payment.captured', sid)  # the organiser registers the URL; the next event arrives
    assert d.status == 200
    live = mode_section(settings_page(admin, customer.shop), 'live')
    assert 'cannot reach' not in live and 'Last verified webhook: payment.captured' in live, live


# -- the payment's own mode decides the secret -------------------------------------------------------


def _equal_secrets(shop, sim):
    """The organiser pasted one signing secret into both fields (NodeRails signs both apps with it)."""
    configure_provider(shop.event, IDENTIFIER, sim, app_id_test=TEST.app_id, api_key_test=TEST.api_key,
                       webhook_secret_test=LIVE.secret)
    sim.webhook_secrets[TEST.app_id] = LIVE.secret


def _switch_mode(shop, testmode):
    with scopes_disabled():
        shop.event.testmode = testmode
        shop.event.save()


def test_equal_secrets_test_order_still_settling_is_confirmed_after_the_event_goes_live(customer, sim):
    _equal_secrets(customer.shop, sim)
    _switch_mode(customer.shop, True)
    order, payment, sid = customer.pending_order()
    assert order.testmode
    _switch_mode(customer.shop, False)

    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200 and d.response_body == b'Payment confirmed', d.response_body
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
    assert order.status == 'p' and payment.state == 'confirmed'


def test_equal_secrets_test_checkout_paid_without_order_is_recorded_after_the_event_goes_live(customer, sim):
    """The unclaimed checkout of a test cart: its capture must be recorded (and later refunded), not
    answered "Mode mismatch" with a 200 that makes NodeRails give up on it."""
    _equal_secrets(customer.shop, sim)
    _switch_mode(customer.shop, True)
    customer.to_confirm()
    sid = customer.state['session_id']
    _switch_mode(customer.shop, False)

    [d] = sim.deliver('payment.captured', sid)
    assert d.status == 200 and b'Payment without order recorded' in d.response_body, d.response_body
    with scopes_disabled():
        checkout = plugin('models').CartCheckout.objects.get(session_id=sid)
    assert checkout.testmode and checkout.state == plugin('unclaimed').STATE_OPEN


def test_a_live_signature_never_confirms_a_test_order_while_the_secrets_differ(customer, sim):
    _switch_mode(customer.shop, True)
    order, payment, sid = customer.pending_order()
    _switch_mode(customer.shop, False)
    [d] = sim.deliver('payment.captured', sid, secret=LIVE.secret)
    assert d.status == 200 and d.response_body == b'Mode mismatch, ignored', d.response_body
    [d] = sim.deliver('payment.captured', sid)  # the test app's secret: its own mode
    assert d.status == 200 and d.response_body == b'Payment confirmed', d.response_body
    with scopes_disabled():
        order.refresh_from_db()
    assert order.status == 'p'
