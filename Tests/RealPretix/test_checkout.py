"""The customer's checkout in a real pretix, against the simulator: session creation, the confirm
page (iframe + CSP), execute_payment, test mode."""

import re
from decimal import Decimal

import pytest
from realpretix import EVENT, LIVE, ORG, TEST, age_for_reconciliation, plugin, run_periodic_tasks
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db


def _csp(response):
    policy = {}
    for part in response['Content-Security-Policy'].split(';'):
        name, _, values = part.strip().partition(' ')
        policy[name] = values.split()
    return policy


def test_checkout_prepare_creates_session_with_idempotency_amount_currency_reference(customer, sim):
    customer.add_to_cart(count=2)
    customer.questions()
    r = customer.choose_payment()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/')
    creates = sim.requests_for('create_session')
    assert len(creates) == 1
    req = creates[0]
    key = req.header('Idempotency-Key')
    assert key and len(key) >= 16, 'Idempotency-Key missing or trivially short: %r' % key
    assert req.header('Content-Type', '').startswith('application/json')
    assert req.header('Accept') == 'application/json'
    assert req.header('User-Agent', '').startswith('pretix-noderails/')
    # live mode: live credentials
    assert (req.header('x-app-id'), req.header('x-api-key')) == (LIVE.app_id, LIVE.api_key)
    body = req.json
    assert body['amount'] == '25.00' and body['currency'] == 'USD'
    assert body['reference'].startswith('%s/%s/' % (ORG, EVENT))
    assert body['metadata']['organizer'] == ORG and body['metadata']['event'] == EVENT
    state = customer.state
    assert state and state['session_id'] in sim.sessions
    assert sim.session(state['session_id'])['amount'] == '25.00'


def test_test_mode_uses_test_credentials(customer, sim):
    with scopes_disabled():
        customer.shop.event.testmode = True
        customer.shop.event.save()
    r = customer.to_confirm()
    assert r.status_code == 302, customer.messages(customer.follow(r))
    req = sim.requests_for('create_session')[0]
    assert (req.header('x-app-id'), req.header('x-api-key')) == (TEST.app_id, TEST.api_key)
    sid = customer.state['session_id']
    assert sim.session(sid)['appId'] == TEST.app_id
    sim.mark_paid(sid)
    r, order = customer.place_order()
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.testmode and order.status == 'p'
    verify = sim.requests_for('get_session')[-1]
    assert (verify.header('x-app-id'), verify.header('x-api-key')) == (TEST.app_id, TEST.api_key)


def test_test_mode_without_test_credentials_hides_the_method(customer, sim):
    from realpretix import IDENTIFIER, setting_key
    with scopes_disabled():
        event = customer.shop.event
        event.testmode = True
        event.save()
        event.settings.delete(setting_key('api_key_test'))
    customer.add_to_cart()
    customer.questions()
    page = customer.client.get(customer.url('/checkout/payment/')).content.decode()
    assert 'value="%s"' % IDENTIFIER not in page
    assert sim.requests == []


def test_confirm_page_embeds_checkout_and_extends_csp(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    r = customer.confirm_page()
    assert r.status_code == 200
    html = r.content.decode()
    iframe = re.search(r'<iframe[^>]*\bsrc="([^"]+)"', html)
    assert iframe and iframe.group(1) == '%s/checkout/%s' % (sim.ui_url, sid)
    # JavaScript comes from a static file: pretix's CSP blocks inline scripts
    assert re.search(r'<script[^>]+src="[^"]*/static/%s/[^"]+\.js"' % plugin().__name__, html)
    block = html[html.find(iframe.group(0)) - 3000:html.find(iframe.group(0)) + 3000]
    assert not re.search(r'<script(?![^>]*\bsrc=)[^>]*>\s*\S', block), 'inline script next to the iframe'

    csp = _csp(r)
    for directive in ('frame-src', 'img-src', 'connect-src'):
        assert sim.ui_url in csp[directive], (directive, csp[directive])
    assert sim.api_url in csp['connect-src']
    # pretix's own policy is still there and not widened where it matters
    assert "'self'" in csp['script-src'] and sim.ui_url not in csp['script-src']
    assert "'unsafe-inline'" not in csp['script-src'] and "'unsafe-eval'" not in csp['script-src']
    assert csp['object-src'] == ["'none'"]
    assert "'self'" in csp['default-src'] and 'form-action' in csp and "'self'" in csp['style-src']
    # the hosted page itself may be framed by pretix
    from urllib.request import urlopen
    with urlopen(iframe.group(1), timeout=5) as frame:
        assert frame.headers['Content-Security-Policy'] == 'frame-ancestors *'


def test_paid_session_confirms_payment_and_order(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid)
    r, order = customer.place_order()
    assert order is not None and order.total == Decimal('12.50')
    r = customer.follow(r)
    assert r.status_code == 200
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert payment.state == 'confirmed' and order.status == 'p'
        assert payment.info_data.get('payment_intent_id') == sim.session(sid)['paymentIntentId']
    assert len(sim.sessions) == 1
    assert customer.state is None  # checkout state is not left behind for the next order


def test_open_session_is_not_confirmed_and_customer_told_why(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    r, order = customer.place_order()
    r = customer.follow(r)
    text = r.content.decode()
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert order.status == 'n'
        assert payment.state == 'pending'   # found by the reconciliation if no webhook comes
    msgs = customer.messages(r)
    assert msgs, 'the customer gets no explanation'
    assert any('not been confirmed' in m or 'confirmed yet' in m for m in msgs), msgs
    assert not any('Traceback' in m or 'NodeRails' in m and 'HTTP' in m for m in msgs)
    assert 'Traceback' not in text
    # the webhook later confirms the same payment
    sim.deliver('payment.captured', sid)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p'
    assert len(sim.sessions) == 1


@pytest.mark.parametrize('outcome', ['failed', 'expired'])
def test_failed_or_expired_session_fails_payment_with_message(customer, sim, outcome):
    customer.to_confirm()
    sid = customer.state['session_id']
    (sim.mark_failed if outcome == 'failed' else sim.expire)(sid)
    r, order = customer.place_order()
    r = customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'n'
        assert order.payments.get().state == 'failed'
    msgs = customer.messages(r)
    assert any('not completed' in m or 'try again' in m for m in msgs), msgs


def test_paid_amount_mismatch_is_not_confirmed(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    sim.mark_paid(sid, amount='1.00')
    r, order = customer.place_order()
    r = customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'n' and order.payments.get().state == 'failed'   # left to a human
        from realpretix import plugin as p
        assert order.all_logentries().filter(action_type=p('settlement').LOG_ACTION).exists()
    assert customer.messages(r)


def test_status_endpoint_reports_paid_for_the_polling_page(customer, sim):
    customer.to_confirm()
    sid = customer.state['session_id']
    status_url = re.search(r'data-status-url="([^"]+)"', customer.confirm_page().content.decode()).group(1)
    r = customer.client.get(status_url)
    assert r.status_code == 200 and r.json()['paid'] is False
    sim.mark_paid(sid)
    from django.core.cache import cache
    cache.clear()
    assert customer.client.get(status_url).json()['paid'] is True


def test_retry_payment_from_order_page(customer, sim):
    """An order whose first NodeRails payment failed can be paid again (payment_prepare path)."""
    customer.to_confirm()
    sim.expire(customer.state['session_id'])
    r, order = customer.place_order()
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        assert order.payments.get().state == 'failed'
    base = '/%s/%s/order/%s/%s' % (ORG, EVENT, order.code, order.secret)
    r = customer.client.post(base + '/pay/change', {'payment': 'noderails'})
    assert r.status_code == 302, customer.messages(customer.follow(r))
    r = customer.follow(r)
    assert r.status_code == 200
    html = r.content.decode()
    sid = customer.state['session_id']
    assert '%s/checkout/%s' % (sim.ui_url, sid) in html
    assert sim.ui_url in _csp(r)['frame-src']
    assert sim.session(sid)['metadata']['order'] == order.code
    sim.mark_paid(sid)
    confirm_url = r.request['PATH_INFO']
    r = customer.follow(customer.client.post(confirm_url))
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p'
        assert sorted(p.state for p in order.payments.all()) == ['confirmed', 'failed']


def test_confirm_page_never_shows_the_checkout_of_another_order(customer, sim):
    """One customer, two unpaid orders in one event, paid again in two tabs: the browser session holds
    the checkout started last, the first order's. The second order's confirm page must not embed it
    (its amount and reference are the first order's, and paying it would pay the first order)."""
    orders = []
    for _ in range(2):
        customer.to_confirm()
        sim.expire(customer.state['session_id'])
        r, order = customer.place_order()
        customer.follow(r)
        orders.append(order)
    first, second = orders

    def pay_again(order):
        base = '/%s/%s/order/%s/%s' % (ORG, EVENT, order.code, order.secret)
        r = customer.follow(customer.client.post(base + '/pay/change', {'payment': 'noderails'}))
        assert r.status_code == 200, customer.messages(r)
        return r.request['PATH_INFO'], customer.state['session_id']

    second_confirm, second_sid = pay_again(second)
    first_confirm, first_sid = pay_again(first)
    html = customer.client.get(second_confirm).content.decode()
    assert first_sid not in html and second_sid not in html
    assert 'started for another order or payment' in html
    assert '%s/checkout/%s' % (sim.ui_url, first_sid) in customer.client.get(first_confirm).content.decode()
    # Paid in the first tab; confirming the second order is refused, and the money goes where it
    # was meant to: the first order, by the webhook.
    sim.mark_paid(first_sid)
    customer.follow(customer.client.post(second_confirm))
    [delivery] = sim.deliver('payment.captured', first_sid)
    assert delivery.status == 200, delivery.response_body
    _paid_once(first)
    with scopes_disabled():
        second.refresh_from_db()
        assert second.status == 'n' and not second.payments.filter(state='confirmed').exists()


def _paid_on_order_page_and_left(customer, sim, pays=True):
    """A failed first payment, then the order page's retry: the customer pays in the embedded
    checkout (unless not `pays`) and closes the tab without confirming. Returns (order, the new
    payment, session id)."""
    customer.to_confirm()
    sim.expire(customer.state['session_id'])
    r, order = customer.place_order()
    customer.follow(r)
    base = '/%s/%s/order/%s/%s' % (ORG, EVENT, order.code, order.secret)
    r = customer.follow(customer.client.post(base + '/pay/change', {'payment': 'noderails'}))
    assert r.status_code == 200
    sid = customer.state['session_id']
    if pays:
        sim.mark_paid(sid)  # paid in the iframe; the confirm button is never clicked
    with scopes_disabled():
        payment = order.payments.get(state='created')
        assert payment.info_data['session_id'] == sid, 'the session must be bound to the payment before it is paid'
    return order, payment, sid


def _paid_once(order):
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == 'p'
        assert sorted(p.state for p in order.payments.all()) == ['confirmed', 'failed']


def test_paid_on_order_page_then_tab_closed_is_settled_by_the_webhook(customer, sim):
    order, _payment, sid = _paid_on_order_page_and_left(customer, sim)
    [delivery] = sim.deliver('payment.captured', sid)
    assert delivery.status == 200, delivery.response_body
    _paid_once(order)


def test_paid_on_order_page_then_tab_closed_is_settled_by_reconciliation(customer, sim):
    order, payment, _sid = _paid_on_order_page_and_left(customer, sim)
    age_for_reconciliation(payment)
    run_periodic_tasks()
    _paid_once(order)


def test_failed_attempt_on_the_order_page_is_not_the_end_of_the_payment(customer, sim):
    """The reconciliation finds the session FAILED: NodeRails' hosted checkout lets the customer try
    again, so the payment stays open (only EXPIRED ends it), and when the customer pays after all the
    reconciliation confirms it, with no webhook."""
    sim.configure(retry_after_failure=True)
    order, payment, sid = _paid_on_order_page_and_left(customer, sim, pays=False)
    sim.mark_failed(sid)
    age_for_reconciliation(payment)
    run_periodic_tasks()
    with scopes_disabled():
        payment.refresh_from_db()
    assert payment.state == 'created', 'a failed attempt ended a payment the customer can still make'
    sim.mark_paid(sid)
    run_periodic_tasks()
    _paid_once(order)
    sim.expire(_paid_on_order_page_and_left(customer, sim, pays=False)[2])   # EXPIRED does end one
    with scopes_disabled():
        expired = customer.shop.event.orders.order_by('-pk').first().payments.get(state='created')
    age_for_reconciliation(expired)
    run_periodic_tasks()
    with scopes_disabled():
        expired.refresh_from_db()
    assert expired.state == 'failed'


def test_payment_step_offers_the_method_by_public_name(customer, sim):
    customer.add_to_cart()
    customer.questions()
    page = customer.client.get(customer.url('/checkout/payment/')).content.decode()
    assert 'value="noderails"' in page
    assert str(plugin('payment').NodeRailsPayment.public_name) in page
    assert sim.requests == []  # nothing is created at NodeRails before the customer chooses


def test_iframe_block_sits_inside_the_place_order_form_and_js_is_served(customer, sim):
    """checkout.js gates the surrounding form's submit button: the block must be inside that form."""
    from html.parser import HTMLParser

    from django.contrib.staticfiles import finders
    customer.to_confirm()
    html = customer.confirm_page().content.decode()

    class P(HTMLParser):
        depth, found, submit_in_form, action = 0, False, False, None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == 'form' and a.get('method', '').lower() == 'post':
                self.depth += 1
            elif tag == 'iframe' and self.depth:
                self.found = True
            elif tag == 'button' and a.get('type') == 'submit' and self.depth and self.found:
                self.submit_in_form = True

        def handle_endtag(self, tag):
            if tag == 'form' and self.depth:
                self.depth -= 1
    p = P()
    p.feed(html)
    assert p.found and p.submit_in_form
    js = re.search(r'<script[^>]+src="/static/([^"]+\.js)"', html).group(1)
    assert finders.find(js), 'static file %s not found by Django staticfiles' % js


def test_cart_changed_after_session_never_confirms_less(customer, sim):
    """Session created for 12.50, then the customer adds a second ticket (25.00 due) and pays the
    12.50 checkout shown first: the order is for 25.00 and bound to a new session, never paid."""
    customer.to_confirm()
    first = customer.state['session_id']
    customer.add_to_cart()
    r = customer.confirm_page()
    assert r.status_code == 302 and '/checkout/payment/' in r['Location'], r.status_code
    customer.choose_payment()
    customer.confirm_page()
    sid = customer.state['session_id']
    assert sid != first and sim.session(sid)['amount'] == '25.00'
    sim.mark_paid(first)  # the customer pays the 12.50 checkout that was shown first
    r, order = customer.place_order()
    assert order is not None, customer.messages(customer.follow(r))
    customer.follow(r)
    with scopes_disabled():
        order.refresh_from_db()
        payment = order.payments.get()
        assert order.total == Decimal('25.00') and order.status == 'n'
        assert payment.info_data['session_id'] == sid and payment.state == 'pending', (payment.state, payment.info_data)


def test_cart_changed_after_session_asks_for_a_new_checkout(customer, sim):
    """The confirm page must never show a NodeRails checkout for an amount other than the cart's:
    pretix calls payment_is_valid_session() before the confirm step; a stale session must make it
    False so pretix sends the customer back to choose the payment (and a new session is made)."""
    customer.to_confirm()
    first = customer.state['session_id']
    customer.add_to_cart()          # 25.00 due now
    r = customer.confirm_page()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/payment/'), (
        'the confirm page did not send the customer back to choose the payment: %s' % r.status_code)
    assert list(sim.sessions) == [first], 'a new checkout was made before the customer chose again'
    r = customer.choose_payment()
    assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/'), r.status_code
    second = customer.state['session_id']
    assert second != first and sim.session(second)['amount'] == '25.00'
    html = customer.confirm_page().content.decode()
    assert '/checkout/%s"' % second in html
    assert '/checkout/%s"' % first not in html, 'confirm page still embeds the 12.50 checkout for a 25.00 cart'
