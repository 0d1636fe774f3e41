"""The customer, driving pretix's shop in Chromium: a small page object for the browser suite."""

import base64
import contextlib
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import E2E_DIR, PUBLIC_NAME, WAIT

ROOT = '[data-noderails-checkout]'
FRAME = ROOT + ' iframe'
PLACE_ORDER = 'form[data-asynctask] .checkout-button-row button[type="submit"]'

# Records every noderails:* message the confirm page receives. Installed after checkout.js
# has initialised, so its listener runs after the plugin's for the same event: the button
# state it records is the state right after the plugin handled that very message, which
# makes the forged-message checks deterministic (no sleeping, no races with the poller).
SPY = r"""
var frame = document.querySelector(arguments[0]);
var button = document.querySelector(arguments[1]);
window.__nrSeen = [];
window.addEventListener('message', function (e) {
    var d = e.data;
    if (!d || typeof d !== 'object' || String(d.type || '').indexOf('noderails:') !== 0) { return; }
    window.__nrSeen.push({origin: e.origin, type: d.type, sessionId: d.sessionId,
                          fromFrame: !!frame && e.source === frame.contentWindow,
                          buttonDisabled: button.disabled});
}, false);
return true;
"""


class Shopper:
    def __init__(self, driver, shop):
        self.d = driver
        self.shop = shop

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, predicate, timeout=WAIT, message='condition'):
        return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: predicate(), message)

    def wait_url(self, fragment, timeout=WAIT):
        return self.wait(lambda: fragment in self.d.current_url, timeout, 'URL containing %r (at %s)'
                         % (fragment, self.d.current_url))

    def css(self, selector):
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def click_when_ready(self, selector, timeout=WAIT):
        self.wait(lambda: self.d.find_elements(By.CSS_SELECTOR, selector)
                  and self.css(selector).is_displayed() and self.css(selector).is_enabled(),
                  timeout, 'clickable %s' % selector)
        self.css(selector).click()

    # -- the shop ----------------------------------------------------------------------------

    def to_payment_step(self, email='buyer@example.org', quantities=None):
        """Event page -> products into the cart (one ticket, or {item: count} typed into the shop's
        quantity fields) -> checkout -> contact details -> payment step."""
        self.d.get(self.shop.url)
        for item, count in (quantities or {}).items():
            field = self.css('input[name="item_%d"]' % item.pk)
            field.clear()
            field.send_keys(str(count))
        self.click_when_ready('#btn-add-to-cart')
        self.click_when_ready('form.checkout-button-primary button[type="submit"]', timeout=20)
        self.wait_url('/checkout/questions/')
        self.css('#id_email').send_keys(email)
        self.click_when_ready('.checkout-button-row button[type="submit"]')
        self.wait_url('/checkout/payment/')

    def select_method(self, label):
        """Pick a payment method by the name the customer sees."""
        self.d.find_element(By.XPATH, "//label[.//strong[normalize-space()=%s]]" % _xpath_literal(label)).click()
        radio = self.d.find_element(
            By.XPATH, "//label[.//strong[normalize-space()=%s]]//input[@name='payment']" % _xpath_literal(label))
        self.wait(radio.is_selected, message='%s selected' % label)

    def choose_method(self, label):
        """Pick a payment method by the name the customer sees, then continue."""
        self.select_method(label)
        self.click_when_ready('.checkout-button-row button[type="submit"]')
        self.wait_url('/checkout/confirm/', timeout=20)

    def to_confirm(self):
        """The whole way to the confirm page with the NodeRails checkout; returns the session id."""
        self.to_payment_step()
        self.choose_method(PUBLIC_NAME)
        return self.wait_checkout_ready()

    def wait_checkout_ready(self):
        """checkout.js has initialised (it disables Place order) and the hosted checkout has loaded."""
        self.wait(lambda: self.d.find_elements(By.CSS_SELECTOR, ROOT), message='NodeRails checkout on the page')
        self.wait(lambda: self.css(PLACE_ORDER).get_property('disabled'), message='checkout.js disabling Place order')
        with self.in_checkout():
            self.wait(lambda: self.d.find_elements(By.ID, 'nr-pay'), message='hosted checkout in the iframe')
        return self.css(ROOT).get_attribute('data-session-id')

    # -- the confirm page ------------------------------------------------------------------------

    @property
    def place_order(self):
        return self.css(PLACE_ORDER)

    def place_order_enabled(self):
        button = self.place_order
        return not button.get_property('disabled') and button.get_attribute('aria-disabled') is None

    def visible_states(self):
        return [el.get_attribute('data-noderails-state')
                for el in self.d.find_elements(By.CSS_SELECTOR, ROOT + ' [data-noderails-state]')
                if el.is_displayed()]

    def state_text(self, name):
        return self.css(ROOT + ' [data-noderails-state="%s"]' % name).text.strip()

    def poll_interval_seconds(self):
        return int(self.css(ROOT).get_attribute('data-poll-interval')) / 1000.0

    def install_spy(self):
        return self.d.execute_script(SPY, FRAME, PLACE_ORDER)

    def seen(self):
        return self.d.execute_script('return window.__nrSeen || []')

    @contextlib.contextmanager
    def in_checkout(self):
        """Inside the embedded NodeRails checkout (the iframe's document)."""
        self.d.switch_to.frame(self.css(FRAME))
        try:
            yield
        finally:
            self.d.switch_to.default_content()

    def checkout_action(self, button_id, expected_status):
        """Click Pay / Fail in the hosted checkout; returns once NodeRails shows the new status."""
        with self.in_checkout():
            self.click_when_ready('#' + button_id)
            self.wait(lambda: self.css('#nr-status').get_attribute('data-status') == expected_status,
                      message='hosted checkout status %s' % expected_status)

    def pay_in_checkout(self):
        self.checkout_action('nr-pay', 'PAID')

    def fail_in_checkout(self):
        self.checkout_action('nr-fail', 'FAILED')

    def wait_place_order_enabled(self, timeout=WAIT):
        start = time.monotonic()
        self.wait(self.place_order_enabled, timeout, 'Place order to become enabled')
        return time.monotonic() - start

    def click_place_order(self):
        self.place_order.click()
        self.wait_url('/order/', timeout=30)
        self.wait(lambda: self.d.execute_script('return document.readyState') == 'complete', timeout=20)

    # -- evidence ------------------------------------------------------------------------------

    def screenshot(self, name) -> Path:
        """Full-page PNG under build/e2e/ (not just the viewport)."""
        E2E_DIR.mkdir(parents=True, exist_ok=True)
        metrics = self.d.execute_cdp_cmd('Page.getLayoutMetrics', {})
        size = metrics.get('cssContentSize') or metrics['contentSize']
        shot = self.d.execute_cdp_cmd('Page.captureScreenshot', {
            'format': 'png', 'captureBeyondViewport': True,
            'clip': {'x': 0, 'y': 0, 'width': size['width'], 'height': size['height'], 'scale': 1},
        })
        path = E2E_DIR / name
        path.write_bytes(base64.b64decode(shot['data']))
        return path


def _xpath_literal(text):
    if "'" not in text:
        return "'%s'" % text
    return 'concat(%s)' % ', "\'", '.join("'%s'" % part for part in text.split("'"))
