"""`demo --screenshots`: headless Chromium buys two tickets in each language of the config and
photographs the four pages the variant changes; index.html is the contact sheet.

For each picture the folder also gets the page's DOM (dom/*.html), and pretix-forge-demo.json
lists them all with what the browser rendered (visible text, computed colours of the branded
elements, whether the logo loaded), so a reviewer or a CI job can check the branding without
looking at pixels.
"""

import base64
import json
import os
import stat
import time
from html import escape
from urllib.parse import quote

from .lifecycle import DemoError

STEPS = (
    ('payment-step', 'Payment step'),
    ('confirm-before-payment', 'Confirm page before payment'),
    ('confirm-after-payment', 'Confirm page after payment'),
    ('order-paid', 'Paid order page'),
)
LANGUAGE_NAMES = {'en': 'English', 'de': 'Deutsch', 'de-informal': 'Deutsch (Du)'}
ROOT = '[data-noderails-checkout]'
FRAME = ROOT + ' iframe'
PLACE_ORDER = 'form[data-asynctask] .checkout-button-row button[type="submit"]'
CONTINUE = '.checkout-button-row button[type="submit"]'
WAIT = 60
WINDOW_WIDTH = 1280

# What the browser rendered, read in the page after each step.
OBSERVE = r"""
function styled(selector, properties) {
    var el = document.querySelector(selector);
    if (!el) { return null; }
    var cs = window.getComputedStyle(el);
    var result = {visible: el.getClientRects().length > 0 && cs.visibility !== 'hidden', text: el.innerText};
    properties.forEach(function (p) { result[p] = cs.getPropertyValue(p); });
    return result;
}
var logo = document.querySelector('img.noderails-logo');
return {
    url: location.href,
    title: document.title,
    lang: document.documentElement.lang,
    visible_text: document.body.innerText,
    heading: styled('.noderails-heading', ['border-left-color', 'color']),
    paid_banner: styled('[data-noderails-state="paid"]', ['background-color', 'color']),
    waiting_banner: styled('[data-noderails-state="waiting"]', ['background-color', 'color']),
    logo: logo ? {src: logo.currentSrc, loaded: logo.complete && logo.naturalWidth > 0,
                  width: logo.naturalWidth, height: logo.naturalHeight} : null
};
"""


def take(spec, server, shop, out_dir):
    languages = shop.event.settings.get('locales')
    os.makedirs(os.path.join(out_dir, 'dom'), exist_ok=True)
    driver = _browser(spec)
    pages = []
    try:
        for language in languages:
            print('screenshots: %s' % language, flush=True)
            pages += Customer(driver, server.url, shop, spec, language, out_dir).buy_two_tickets()
    finally:
        driver.quit()
    with open(os.path.join(out_dir, 'pretix-forge-demo.json'), 'w', encoding='utf-8') as f:
        json.dump({'package': spec['package'], 'languages': languages, 'pages': pages}, f, indent=2,
                  ensure_ascii=False)
    with open(os.path.join(out_dir, 'index.html'), 'w', encoding='utf-8') as f:
        f.write(contact_sheet(spec, languages, pages))
    return pages


def _browser(spec):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars',
                '--window-size=%d,800' % WINDOW_WIDTH, '--force-color-profile=srgb', '--no-first-run',
                '--disable-extensions', '--user-data-dir=' + os.path.join(spec['workspace'], 'chromium-profile')):
        options.add_argument(arg)
    options.binary_location = spec['chromium']
    try:
        driver = webdriver.Chrome(options=options, service=Service(_guarded_driver(spec)))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DemoError('Chromium did not start (%s, %s): %s' % (spec['chromium'], spec['chromedriver'], reason))
    driver.set_page_load_timeout(WAIT)
    return driver


def _guarded_driver(spec):
    """chromedriver through guard.py, so it dies with this process even if that is SIGKILLed
    (selenium starts it from this thread). A script, because selenium wants one executable."""
    import sys
    path = os.path.join(spec['workspace'], 'chromedriver-guarded')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nexec %s -m forge_demo.guard %d %s "$@"\n'
                % (_sh(sys.executable), os.getpid(), _sh(spec['chromedriver'])))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def _sh(text):
    return "'" + text.replace("'", "'\\''") + "'"


class Customer:
    """One customer in one language: two tickets, the variant's payment method, paid in the simulator."""

    def __init__(self, driver, base_url, shop, spec, language, out_dir):
        self.d = driver
        self.base_url = base_url
        self.shop = shop
        self.spec = spec
        self.language = language
        self.out_dir = out_dir
        self.pages = []

    def buy_two_tickets(self):
        from selenium.webdriver.common.by import By
        d = self.d
        d.delete_all_cookies()
        d.get('%s/locale/set?locale=%s&next=%s' % (self.base_url, quote(self.language), quote(self.shop.path)))
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, '#btn-add-to-cart'), 'the event page')
        for item in self.shop.items:
            d.execute_script("var i = document.querySelector(arguments[0]); i.value = '1';"
                             "i.dispatchEvent(new Event('change', {bubbles: true}));",
                             'input[name="item_%d"]' % item.pk)
        self.click('#btn-add-to-cart')
        self.click('form.checkout-button-primary button[type="submit"]')
        self.wait_url('/checkout/questions/')
        d.find_element(By.CSS_SELECTOR, '#id_email').send_keys('customer@example.org')
        repeat = d.find_elements(By.CSS_SELECTOR, '#id_email_repeat')
        if repeat:
            repeat[0].send_keys('customer@example.org')
        self.click(CONTINUE)
        self.wait_url('/checkout/payment/')

        radio = 'input[name="payment"][value="%s"]' % self.spec['provider']['identifier']
        d.execute_script('document.querySelector(arguments[0]).click()', radio)
        self.wait(lambda: d.find_element(By.CSS_SELECTOR, radio).is_selected(), 'the payment method selected')
        self.settle()
        self.capture('payment-step')

        self.click(CONTINUE)
        self.wait_url('/checkout/confirm/')
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, FRAME), 'the NodeRails checkout on the confirm page')
        with self.in_checkout():
            self.wait(lambda: d.find_elements(By.ID, 'nr-pay'), 'the hosted checkout in its frame')
            self.settle()
        self.settle()
        self.capture('confirm-before-payment')

        with self.in_checkout():
            self.click('#nr-pay')
            self.wait(lambda: d.find_element(By.ID, 'nr-status').get_attribute('data-status') == 'PAID',
                      'the hosted checkout to report the payment')
        self.wait(lambda: d.find_element(By.CSS_SELECTOR, '[data-noderails-state="paid"]').is_displayed()
                  and d.find_element(By.CSS_SELECTOR, PLACE_ORDER).is_enabled(), 'the confirm page to see the payment')
        self.settle()
        self.capture('confirm-after-payment')

        self.click(PLACE_ORDER)
        self.wait_url('/order/')
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, '.textbubble-success'), 'the paid order page')
        self.settle()
        self.capture('order-paid')
        return self.pages

    # -- helpers ------------------------------------------------------------------------------

    def wait(self, predicate, what, timeout=WAIT):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda _d: predicate())
        except TimeoutException:
            raise DemoError('screenshots (%s): timed out after %d s waiting for %s at %s'
                            % (self.language, timeout, what, self.d.current_url))

    def wait_url(self, fragment):
        self.wait(lambda: fragment in self.d.current_url, 'a page under %s' % fragment)

    def click(self, selector):
        from selenium.webdriver.common.by import By
        d = self.d

        def ready():
            found = d.find_elements(By.CSS_SELECTOR, selector)
            return found and found[0].is_displayed() and found[0].is_enabled()
        self.wait(ready, selector)
        d.find_element(By.CSS_SELECTOR, selector).click()

    def full_page_png(self):
        """The whole page, not just the window: the viewport is made as tall as the page first.
        Chromium does not paint a cross-origin frame outside the viewport (the hosted checkout
        would be a blank box), so capturing beyond the viewport is not enough."""
        d = self.d
        height = d.execute_script('return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)')
        d.execute_cdp_cmd('Emulation.setDeviceMetricsOverride',
                          {'width': WINDOW_WIDTH, 'height': height, 'deviceScaleFactor': 1, 'mobile': False})
        try:
            d.execute_async_script('var done = arguments[arguments.length - 1];'
                                   'requestAnimationFrame(function () { requestAnimationFrame(done); });')
            time.sleep(0.3)  # the frames repaint in their own renderer
            return d.execute_cdp_cmd('Page.captureScreenshot', {'format': 'png'})
        finally:
            d.execute_cdp_cmd('Emulation.clearDeviceMetricsOverride', {})

    def settle(self):
        """Fonts and images loaded and no animation running, so the picture shows the final page."""
        self.wait(lambda: self.d.execute_script(
            "return document.readyState === 'complete' && (!document.fonts || document.fonts.status === 'loaded')"
            " && Array.prototype.every.call(document.images, function (i) { return i.complete; })"),
            'the page to finish loading')
        time.sleep(0.5)  # pretix's collapse and fade transitions take a few hundred milliseconds

    def in_checkout(self):
        from contextlib import contextmanager

        from selenium.webdriver.common.by import By

        @contextmanager
        def frame():
            self.d.switch_to.frame(self.d.find_element(By.CSS_SELECTOR, FRAME))
            try:
                yield
            finally:
                self.d.switch_to.default_content()
        return frame()

    def capture(self, step):
        index = [name for name, _caption in STEPS].index(step) + 1
        stem = '%s-%d-%s' % (self.language, index, step)
        shot = self.full_page_png()
        with open(os.path.join(self.out_dir, stem + '.png'), 'wb') as f:
            f.write(base64.b64decode(shot['data']))
        with open(os.path.join(self.out_dir, 'dom', stem + '.html'), 'w', encoding='utf-8') as f:
            f.write('<!DOCTYPE html>\n' + self.d.execute_script('return document.documentElement.outerHTML'))
        observed = self.d.execute_script(OBSERVE)
        self.pages.append(dict(observed, language=self.language, step=step, caption=dict(STEPS)[step],
                               png=stem + '.png', dom='dom/%s.html' % stem))


def contact_sheet(spec, languages, pages):
    package = spec['package']
    title = '%s %s: pretix-forge demo' % (package['name'], package['version'])
    rows = []
    for language in languages:
        figures = []
        for page in (p for p in pages if p['language'] == language):
            figures.append(
                '<figure><a href="{png}"><img src="{png}" alt="{alt}" loading="lazy"></a>'
                '<figcaption>{caption}</figcaption></figure>'.format(
                    png=escape(quote(page['png'])), alt=escape('%s (%s)' % (page['caption'], language)),
                    caption=escape(page['caption'])))
        rows.append('<section><h2>%s <code>%s</code></h2><div class="row">%s</div></section>'
                    % (escape(LANGUAGE_NAMES.get(language, language)), escape(language), ''.join(figures)))
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="pretix-forge demo">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.row {{ display: flex; gap: 16px; align-items: flex-start; overflow-x: auto; }}
figure {{ margin: 0; flex: 0 0 300px; }}
figure img {{ width: 300px; border: 1px solid #ccc; }}
figcaption {{ font-size: 14px; margin-top: 4px; }}
</style></head>
<body><h1>{title}</h1>
<p>{provider} in pretix: the payment step, the confirm page before and after paying in the
NodeRails checkout, and the paid order, in each language of the config. Click a picture for full size.</p>
{rows}
</body></html>
""".format(title=escape(title), provider=escape(spec['provider']['public_name']), rows='\n'.join(rows))
