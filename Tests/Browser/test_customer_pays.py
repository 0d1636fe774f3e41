"""A customer pays in a real browser.

The confirm page is where money moves: the NodeRails hosted checkout in an iframe, the
plugin's postMessage listener, its status poller and pretix's Content-Security-Policy must
agree in a real browser. Everything here is real: pretix (live server) with the plugin
installed from our sdist, the NodeRails simulator on two more ports (API and hosted
checkout, so three distinct origins), and headless Chromium driven like a customer.

Run (from the repo root): PRETIX_FORGE=.build/debug/pretix-forge .venvs/pretix/bin/python -m pytest Tests/Browser -q
"""

import re
import struct
import subprocess
import tarfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django_scopes import scopes_disabled
from selenium.webdriver.common.by import By

from browser_support import E2E_DIR, LIVE, MODULE, PRICE, PUBLIC_NAME, REPO, installed_static, plugin, wait_until
from shopper import FRAME, Shopper

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETE = 'noderails:checkout-complete'
# The listener's origin check; test 8 neutralises it (replaced by `false`), leaving the rest as is.
ORIGIN_CHECK = re.compile(r'event\.origin\s*!==?\s*origin\b')


@pytest.fixture
def shopper(browser, configured):
    return Shopper(browser, configured)


def latest_order(shop):
    from pretix.base.models import Order
    with scopes_disabled():
        order = Order.objects.filter(event=shop.event).order_by('-pk').first()
        payments = list(order.payments.order_by('pk')) if order else []
    return order, payments


def origin(url):
    return url.split('/', 3)[0] + '//' + url.split('/', 3)[2]


# -- forged messages (scenario 2, and the mutant check of scenario 8) ------------------------------------


def forge_from_top_window(shopper, sid):
    """The shop page itself posts a 'complete' message (any script on the page could)."""
    shopper.d.execute_script("window.postMessage({type: arguments[0], sessionId: arguments[1], status: 'PAID'}, '*')",
                             COMPLETE, sid)


def forge_from_embedded_frame(shopper, sid, *, opaque):
    """The embedded checkout's window is navigated away from NodeRails and posts 'complete'.

    ``event.source`` is then exactly the iframe's window, so only the origin check can tell
    it is not NodeRails speaking. opaque=False: an about:blank document created by the shop
    page (it inherits the shop's origin, which pretix's frame-src 'self' allows);
    opaque=True: a sandboxed srcdoc document (origin "null"). Returns the origin the page
    sees on the message.
    """
    d = shopper.d
    if opaque:
        d.execute_script("var f = document.querySelector(arguments[0]); f.setAttribute('sandbox', 'allow-scripts');"
                         "f.setAttribute('srcdoc', '<p>not NodeRails</p>');", FRAME)
        marker = 'about:srcdoc'
    else:
        d.execute_script("document.querySelector(arguments[0]).src = 'about:blank';", FRAME)
        marker = 'about:blank'
    with shopper.in_checkout():
        shopper.wait(lambda: d.execute_script('return location.href') == marker, message='frame at %s' % marker)
        d.execute_script("parent.postMessage({type: arguments[0], sessionId: arguments[1], status: 'PAID'}, '*')",
                         COMPLETE, sid)
    return 'null' if opaque else origin(shopper.shop.url)


def assert_forgeries_from_frame_ignored(shopper, sid):
    """Scenario 2's decisive check: messages that come from the checkout frame's window but not
    from the NodeRails origin leave Place order disabled. Used on the mutant in test 8."""
    for opaque in (False, True):
        before = len(shopper.seen())
        expected_origin = forge_from_embedded_frame(shopper, sid, opaque=opaque)
        shopper.wait(lambda: len(shopper.seen()) > before, message='the forged message to arrive')
        message = shopper.seen()[-1]
        assert (message['origin'], message['fromFrame'], message['type']) == (expected_origin, True, COMPLETE)
        assert message['buttonDisabled'], 'Place order was enabled by a message from %s' % expected_origin
        assert not shopper.place_order_enabled(), 'Place order enabled by a message from %s' % expected_origin
        assert shopper.visible_states() == ['waiting']


# -- 1 ------------------------------------------------------------------------------------------------


def test_customer_pays_in_the_embedded_checkout_and_the_order_is_paid(shopper, sim):
    sid = shopper.to_confirm()

    frame = shopper.css(FRAME)
    assert frame.get_attribute('src') == sim.checkout_url(sid)
    assert origin(sim.ui_url) not in (origin(shopper.shop.url), origin(sim.api_url))
    with shopper.in_checkout():
        assert 'Pay 12.50 USD' in shopper.css('h1').text
        assert shopper.css('#nr-status').get_attribute('data-status') == 'OPEN'
    assert not shopper.place_order_enabled()
    assert shopper.visible_states() == ['waiting']
    shopper.install_spy()

    shopper.pay_in_checkout()
    assert sim.session(sid)['status'] == 'PAID'
    shopper.wait_place_order_enabled()
    messages = shopper.seen()
    assert [(m['origin'], m['type'], m['fromFrame'], m['sessionId']) for m in messages] == \
        [(origin(sim.ui_url), COMPLETE, True, sid)]
    assert shopper.visible_states() == ['paid']
    assert shopper.state_text('paid') == 'Payment received. You can now place your order.'

    sim.clear_requests()
    shopper.click_place_order()
    shopper.wait(lambda: shopper.d.find_elements(By.CSS_SELECTOR, '.textbubble-success'),
                 message="the order page's status badge")
    assert 'Paid' in shopper.css('.textbubble-success').text
    # The transaction, linked to its chain's explorer (the simulator's checkout pays on chain 1).
    link = shopper.css('.noderails-transaction a.noderails-tx-link')
    assert link.is_displayed()
    assert link.get_attribute('href') == 'https://etherscan.io/tx/' + sim.session(sid)['txHash']
    shopper.screenshot('order-paid.png')

    order, payments = latest_order(shopper.shop)
    assert order.status == 'p' and order.total == PRICE
    assert [(p.provider, p.state) for p in payments] == [('noderails', 'confirmed')]
    assert payments[0].info_data['session_id'] == sid
    assert payments[0].info_data['payment_intent_id'] == sim.session(sid)['paymentIntentId']
    assert order.code in shopper.d.current_url
    # Place order re-verified the session server-side, with the live credentials.
    verify = sim.requests_for('get_session')
    assert verify and verify[-1].path == '/checkout-sessions/public/' + sid
    assert (verify[-1].header('x-app-id'), verify[-1].header('x-api-key')) == (LIVE.app_id, LIVE.api_key)


def test_customer_pays_for_two_identical_tickets_and_another_item(shopper, sim):
    """The cart real shops sell: two tickets of one kind plus another product. The confirm page shows
    the checkout for the whole cart (it used to send such carts back to the payment step), and
    one payment of 30.00 pays the order."""
    shop = shopper.shop
    with scopes_disabled():
        workshop = shop.event.items.create(name='Workshop', default_price=Decimal('5.00'), active=True)
        shop.quota.items.add(workshop)
    shopper.to_payment_step(quantities={shop.item: 2, workshop: 1})
    shopper.choose_method(PUBLIC_NAME)
    sid = shopper.wait_checkout_ready()
    with shopper.in_checkout():
        assert 'Pay 30.00 USD' in shopper.css('h1').text
    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()
    shopper.click_place_order()
    shopper.wait(lambda: shopper.d.find_elements(By.CSS_SELECTOR, '.textbubble-success'),
                 message="the order page's status badge")
    shopper.screenshot('order-paid-cart.png')

    order, payments = latest_order(shop)
    assert order.status == 'p' and order.total == Decimal('30.00')
    with scopes_disabled():
        assert sorted((p.item.name, p.price) for p in order.positions.all()) == [
            ('Conference ticket', PRICE), ('Conference ticket', PRICE), ('Workshop', Decimal('5.00'))]
    assert [(p.provider, p.state, p.amount) for p in payments] == [('noderails', 'confirmed', Decimal('30.00'))]
    assert payments[0].info_data['session_id'] == sid
    assert len(sim.sessions) == 1


# -- 2 ------------------------------------------------------------------------------------------------


def test_complete_message_from_any_other_origin_is_ignored(shopper, sim, evil):
    """Forged 'complete' messages with the right session id leave Place order disabled: from a page
    on another origin that opened the shop, from the shop page itself, from the checkout frame's
    window once it is no longer at the NodeRails origin, and from a NodeRails-origin window that is
    not the embedded checkout. Each message is checked to have arrived (a spy listener records it
    right after the plugin's listener ran), so nothing passes just because a message got lost."""
    sid = shopper.to_confirm()
    confirm_url = shopper.d.current_url
    main_window = shopper.d.current_window_handle

    # a) A page on another origin (own port) that opened the shop keeps posting to it.
    shopper.d.switch_to.new_window('tab')
    evil_tab = shopper.d.current_window_handle
    shopper.d.get(evil.url + '?' + urlencode({'target': confirm_url, 'session': sid}))
    shopper.click_when_ready('#open')
    shopper.wait(lambda: len(shopper.d.window_handles) == 3, message='the shop popup')
    popup = [h for h in shopper.d.window_handles if h not in (main_window, evil_tab)][0]
    shopper.d.switch_to.window(popup)
    assert shopper.wait_checkout_ready() == sid
    shopper.install_spy()
    shopper.wait(lambda: len(shopper.seen()) >= 3, message='forged messages from %s' % evil.origin)
    for message in shopper.seen():
        assert (message['origin'], message['fromFrame'], message['sessionId']) == (evil.origin, False, sid)
        assert message['buttonDisabled']
    assert not shopper.place_order_enabled() and shopper.visible_states() == ['waiting']
    for handle in (popup, evil_tab):
        shopper.d.switch_to.window(handle)
        shopper.d.close()
    shopper.d.switch_to.window(main_window)

    # b) The shop page's own window (same origin as pretix, not the iframe).
    shopper.install_spy()
    forge_from_top_window(shopper, sid)
    shopper.wait(lambda: shopper.seen(), message='the message from the top window')
    assert shopper.seen()[0]['origin'] == origin(shopper.shop.url) and not shopper.seen()[0]['fromFrame']
    assert shopper.seen()[0]['buttonDisabled'] and not shopper.place_order_enabled()

    # c) The iframe's own window, but no longer at the NodeRails origin.
    assert_forgeries_from_frame_ignored(shopper, sid)

    # d) Even NodeRails' own origin is not enough from a window that is not the embedded checkout
    #    (here a NodeRails page the shop page opened as a popup, posting to its opener).
    before = len(shopper.seen())
    shopper.d.execute_script("window.open(arguments[0], 'nodeRailsPopup')", sim.checkout_url(sid))
    shopper.wait(lambda: len(shopper.d.window_handles) == 2, message='the NodeRails popup')
    shopper.d.switch_to.window([h for h in shopper.d.window_handles if h != main_window][0])
    shopper.wait(lambda: shopper.d.find_elements(By.ID, 'nr-pay'), message='the NodeRails popup page')
    shopper.d.execute_script("opener.postMessage({type: arguments[0], sessionId: arguments[1], status: 'PAID'}, '*')",
                             COMPLETE, sid)
    shopper.d.close()
    shopper.d.switch_to.window(main_window)
    shopper.wait(lambda: len(shopper.seen()) > before, message='the message from the NodeRails popup')
    message = shopper.seen()[-1]
    assert (message['origin'], message['fromFrame']) == (origin(sim.ui_url), False)
    assert message['buttonDisabled'] and not shopper.place_order_enabled()
    assert sim.session(sid)['status'] == 'OPEN'

    # Control: the same page still accepts the real NodeRails checkout once it is back.
    shopper.d.execute_script(
        "var f = document.querySelector(arguments[0]); f.removeAttribute('srcdoc');"
        "f.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups "
        "allow-popups-to-escape-sandbox'); f.src = arguments[1];", FRAME, sim.checkout_url(sid))
    with shopper.in_checkout():
        shopper.wait(lambda: shopper.d.find_elements(By.ID, 'nr-pay'), message='hosted checkout reloaded')
    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()
    assert shopper.seen()[-1]['origin'] == origin(sim.ui_url) and shopper.seen()[-1]['fromFrame']


# -- 3 ------------------------------------------------------------------------------------------------


def test_polling_alone_enables_place_order_within_two_intervals(shopper, sim, settings):
    # A shared cache as in production (redis): the status poll's answers are cached there for
    # just under an interval, which must not delay detection past two intervals.
    settings.CACHES = dict(settings.CACHES, default={'BACKEND': 'django.core.cache.backends.locmem.LocMemCache',
                                                     'LOCATION': 'e2e-polling'})
    status_cache = plugin('views').status_cache()
    assert isinstance(status_cache, LocMemCache) and status_cache is not plugin('views')._PROCESS_CACHE
    status_cache.clear()
    sim.configure(post_message=False)
    sid = shopper.to_confirm()
    with shopper.in_checkout():
        assert shopper.css('#nr-checkout').get_attribute('data-post-message') == '0'
    interval = shopper.poll_interval_seconds()
    shopper.install_spy()

    polls_before = len(sim.requests_for('get_session'))
    # The clock starts before Pay is clicked (not once the checkout shows PAID), so the
    # simulator's round trip counts against the budget too.
    started = time.monotonic()
    shopper.pay_in_checkout()
    assert sim.session(sid)['status'] == 'PAID'
    shopper.wait_place_order_enabled(timeout=2 * interval + 5)
    elapsed = time.monotonic() - started

    assert elapsed <= 2 * interval, 'polling took %.2fs, more than two intervals (%.1fs)' % (elapsed, 2 * interval)
    assert shopper.seen() == [], 'the checkout posted a message although post_message is off'
    polls = sim.requests_for('get_session')[polls_before:]
    assert polls and polls[-1].path == '/checkout-sessions/public/' + sid, 'no status poll reached NodeRails'
    assert shopper.visible_states() == ['paid']
    shopper.click_place_order()
    order, payments = latest_order(shopper.shop)
    assert order.status == 'p' and [p.state for p in payments] == ['confirmed']


# -- 4 ------------------------------------------------------------------------------------------------


def test_checkout_failed_shows_message_and_another_method_can_be_chosen(shopper, sim):
    sid = shopper.to_confirm()
    shopper.install_spy()
    shopper.fail_in_checkout()
    shopper.wait(lambda: shopper.visible_states() == ['failed'], message='the failure message')

    assert shopper.seen()[-1]['type'] == 'noderails:checkout-failed'
    assert shopper.state_text('failed').startswith(
        'The payment did not go through and you have not been charged. Please try again or choose another '
        'payment method.')
    assert not shopper.place_order_enabled()
    assert sim.session(sid)['status'] == 'FAILED'
    shopper.screenshot('confirm-payment-failed.png')

    link = shopper.css('[data-noderails-state="failed"] a')
    assert link.text.strip() == 'Choose another payment method'
    link.click()
    shopper.wait_url('/checkout/payment/')
    shopper.choose_method('Bank transfer')
    assert not shopper.d.find_elements(By.CSS_SELECTOR, '[data-noderails-checkout]')
    assert shopper.place_order_enabled()
    shopper.click_place_order()
    order, payments = latest_order(shopper.shop)
    assert order.status == 'n' and [(p.provider, p.state) for p in payments] == [('banktransfer', 'created')]


# -- 5 ------------------------------------------------------------------------------------------------


def test_webhook_marks_the_order_paid_after_the_customer_closed_the_tab(shopper, sim):
    """The customer paid and placed the order, then closed the tab before pretix could confirm it.

    With this plugin the order only exists once Place order is clicked, so "closed the tab after
    paying" means: the customer paid in the hosted checkout (Place order enabled), clicked Place
    order, but at that moment NodeRails could not be asked (its API answers 503), so
    execute_payment leaves the payment *pending* and the customer is told the order will be marked
    paid automatically. The customer closes the browser. NodeRails' signed payment.captured webhook
    then arrives over real HTTP at pretix, with no browser anywhere, and the order becomes paid.
    A redelivery of the same event is a no-op.
    """
    sid = shopper.to_confirm()
    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()

    sim.fail_next('get_session', status=503, count=None)
    shopper.click_place_order()
    shopper.wait(lambda: 'marked as paid automatically' in shopper.d.page_source,
                 message='the "we will mark it paid" message')
    order, payments = latest_order(shopper.shop)
    assert order.status == 'n'
    assert [(p.provider, p.state) for p in payments] == [('noderails', 'pending')]
    shopper.screenshot('order-pending-before-webhook.png')

    shopper.d.quit()  # the customer closes the tab: no browser from here on
    sim.clear_faults()

    deliveries = sim.deliver('payment.captured', sid, times=2)
    assert [(d.status, d.error) for d in deliveries] == [(200, None), (200, None)], deliveries
    assert deliveries[0].response_body == b'Payment confirmed'
    assert b'Duplicate' in deliveries[1].response_body
    order, payments = latest_order(shopper.shop)
    assert order.status == 'p'
    assert [(p.provider, p.state) for p in payments] == [('noderails', 'confirmed')]
    assert payments[0].info_data['tx_hash'] == sim.session(sid)['txHash']


# -- 6 ------------------------------------------------------------------------------------------------


CSP_MARKERS = ('content security policy', 'content-security-policy', 'refused to')


def _problems(entries):
    """Console entries that are CSP violations or errors (script errors, failed loads)."""
    return [e for e in entries
            if any(m in e['message'].lower() for m in CSP_MARKERS) or e['level'] == 'SEVERE']


def test_confirm_page_console_has_no_csp_violation_or_script_error(shopper, sim):
    shopper.to_payment_step()
    shopper.d.get_log('browser')  # drop what earlier pages logged; from here on it is the confirm page
    shopper.choose_method(PUBLIC_NAME)
    sid = shopper.wait_checkout_ready()
    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()

    entries = shopper.d.get_log('browser')
    page = shopper.d.execute_script('return window.__e2e')
    with shopper.in_checkout():
        frame = shopper.d.execute_script('return window.__e2e')
    assert _problems(entries) == [], entries
    assert page == {'csp': [], 'errors': []}
    assert frame == {'csp': [], 'errors': []}

    # The policy the browser enforced really restricts framing and connections...
    csp = shopper.d.execute_script(
        "return fetch(location.href, {credentials: 'same-origin'}).then(r => r.headers.get('content-security-policy'))")
    directives = dict((d.strip().split(' ', 1) + [''])[:2] for d in csp.split(';') if d.strip())
    assert origin(sim.ui_url) in directives['frame-src'].split()
    assert "'unsafe-inline'" not in directives['script-src']
    assert shopper.css(FRAME).get_attribute('src').endswith(sid)

    # ...and a violation would have been caught: an inline script is refused and reported both ways.
    shopper.d.execute_script("var s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
                             "document.body.appendChild(s);")
    wait_until(lambda: shopper.d.execute_script('return window.__e2e.csp.length'), message='the control violation')
    assert shopper.d.execute_script('return window.__inline') is None
    assert any(m in e['message'].lower() for e in shopper.d.get_log('browser') for m in CSP_MARKERS)


# -- 7 ------------------------------------------------------------------------------------------------


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', path
    return struct.unpack('>II', data[16:24])


def test_screenshots_of_the_confirm_page_before_and_after_payment(shopper, sim):
    shopper.to_confirm()
    before = shopper.screenshot('confirm-before-payment.png')
    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()
    after = shopper.screenshot('confirm-after-payment.png')

    for path in (before, after):
        width, height = _png_size(path)
        assert width >= 1000 and height >= 1200, (path, width, height)  # the whole page, Place order included
        assert path.parent == E2E_DIR
    assert before.read_bytes() != after.read_bytes()


# -- 8 ------------------------------------------------------------------------------------------------


CHECKOUT_JS_TEMPLATE = Path('__module__', 'static', '__module__', 'checkout.js')
CHECKOUT_JS_STATIC = 'pretix_noderails/checkout.js'


def forge_built_checkout_js(installed, work, template_text):
    """The checkout.js pretix-forge ships when the template reads ``template_text``.

    Goes through the real pipeline: an overlay folder with that template, ``pretix-forge build
    --templates``, and the file read back from the sdist it wrote."""
    overlay = work / 'overlay'
    (overlay / CHECKOUT_JS_TEMPLATE).parent.mkdir(parents=True)
    (overlay / CHECKOUT_JS_TEMPLATE).write_text(template_text, 'utf-8')
    out = work / 'dist'
    result = subprocess.run([str(installed.forge), 'build', '--templates', str(overlay), '--out', str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    sdist, = out.glob('*.tar.gz')
    with tarfile.open(sdist) as tar:
        member, = [m for m in tar.getmembers() if m.name.endswith('/%s/static/%s' % (MODULE, CHECKOUT_JS_STATIC))]
        return tar.extractfile(member).read().decode('utf-8')


def served_checkout_js(shopper):
    """What the live server hands out for the confirm page's checkout.js right now."""
    return shopper.d.execute_script(
        "return fetch(document.querySelector('script[src$=\"/checkout.js\"]').src, {cache: 'no-store'})"
        ".then(r => r.text())")


def test_suite_fails_when_the_listener_origin_check_is_removed(
        shopper, sim, serve_static_override, installed, tmp_path):
    """Done-when: the suite must fail when checkout.js stops checking event.origin.

    The mutant is what pretix-forge builds from a checkout.js template whose listener has
    `event.origin !== origin` replaced by `false` (an overlay, through `pretix-forge build`);
    it differs from the installed checkout.js in that guard only, the iframe source check and
    the session id check included. On one confirm page, served through the same static-file
    override each time:

    * the genuine checkout.js: test 2's decisive check passes (forged messages ignored);
    * the mutant (page reloaded): that very check fails, because the forged message from the
      checkout frame's window, now at the shop's origin, enables Place order, although
      nobody paid. So the origin guard, and nothing else, is what keeps test 2 green.

    (Checked by hand as well: running the whole suite with E2E_FORGE_TEMPLATES=DIR, a
    template overlay whose checkout.js lacks the guard, makes tests 2 and 8 fail.)
    """
    genuine = installed_static('checkout.js').read_text('utf-8')
    assert len(ORIGIN_CHECK.findall(genuine)) == 1, \
        'checkout.js does not compare event.origin with the NodeRails origin once: the origin check is gone'
    template_dir = Path(installed.overlay) if installed.overlay else REPO / 'Templates'
    if not (template_dir / CHECKOUT_JS_TEMPLATE).is_file():
        template_dir = REPO / 'Templates'
    template = (template_dir / CHECKOUT_JS_TEMPLATE).read_text('utf-8')
    assert len(ORIGIN_CHECK.findall(template)) == 1
    mutant = forge_built_checkout_js(installed, tmp_path, ORIGIN_CHECK.sub('false', template))
    assert mutant == ORIGIN_CHECK.sub('false', genuine) and mutant != genuine, \
        'the mutant must differ from the installed checkout.js in the origin guard only'

    # Control arm: the genuine script, through the same override, ignores the forgeries.
    serve_static_override(CHECKOUT_JS_STATIC, genuine)
    sid = shopper.to_confirm()
    assert served_checkout_js(shopper) == genuine
    shopper.install_spy()
    assert_forgeries_from_frame_ignored(shopper, sid)

    # Mutant arm: same session, same page, only checkout.js swapped.
    serve_static_override(CHECKOUT_JS_STATIC, mutant)
    shopper.d.refresh()
    assert shopper.wait_checkout_ready() == sid
    assert served_checkout_js(shopper) == mutant and 'event.origin' not in mutant
    assert not shopper.place_order_enabled() and shopper.visible_states() == ['waiting']
    shopper.install_spy()

    with pytest.raises(AssertionError, match='Place order was enabled by a message from'):
        assert_forgeries_from_frame_ignored(shopper, sid)
    accepted = shopper.seen()[-1]
    assert (accepted['origin'], accepted['fromFrame'], accepted['type'], accepted['sessionId']) == \
        (origin(shopper.shop.url), True, COMPLETE, sid)
    assert not accepted['buttonDisabled'] and shopper.place_order_enabled()
    assert shopper.visible_states() == ['paid']
    assert sim.session(sid)['status'] == 'OPEN', 'the forged message was accepted, yet nobody paid'
