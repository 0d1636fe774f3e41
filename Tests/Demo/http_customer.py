"""A customer of the demo shop over plain HTTP (requests): pretix's checkout form by form, the
simulator's hosted checkout page and its Pay button, the order page; and the organiser's
backend login."""

import re
import time
from html import unescape
from urllib.parse import urljoin

import requests

TIMEOUT = 60


class Customer:
    def __init__(self, shop_url):
        self.shop_url = shop_url
        self.session = requests.Session()
        self.session.trust_env = False  # everything is on 127.0.0.1; no proxy may intercept

    def get(self, url):
        response = self.session.get(url, timeout=TIMEOUT)
        assert response.status_code == 200, (url, response.status_code, response.text[-2000:])
        return response

    def post_form(self, page, action, data):
        """POST ``data`` to ``action`` (relative to ``page``) with the page's CSRF token, as its form would."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, 'no CSRF token on %s' % page.url
        url = urljoin(page.url, action)
        response = self.session.post(url, data=dict(data, csrfmiddlewaretoken=token.group(1)),
                                     headers={'Referer': page.url}, timeout=TIMEOUT)
        assert response.status_code == 200, (url, response.status_code, response.text[-2000:])
        return response

    def add_to_cart(self, quantities):
        """``quantities``: item id -> count. Returns the event page after adding."""
        page = self.get(self.shop_url)
        return self.post_form(page, 'cart/add', {'item_%s' % item: str(count) for item, count in quantities.items()})

    def checkout_to_payment_step(self, email='customer@example.org'):
        questions = self.get(urljoin(self.shop_url, 'checkout/start'))
        assert questions.url.endswith('/checkout/questions/'), questions.url
        payment = self.post_form(questions, questions.url, {'email': email, 'email_repeat': email})
        assert payment.url.endswith('/checkout/payment/'), (payment.url, errors(payment))
        return payment

    def choose_payment(self, payment_page, identifier):
        confirm = self.post_form(payment_page, payment_page.url, {'payment': identifier})
        assert confirm.url.endswith('/checkout/confirm/'), (confirm.url, errors(confirm))
        return confirm

    def place_order(self, confirm_page):
        """POST the confirm step; returns the order page pretix sends the customer to."""
        order = self.post_form(confirm_page, confirm_page.url, {})
        assert '/order/' in order.url, (order.url, errors(order))
        return order


def item_ids(event_page):
    """The ids of the items on sale, in page order, from the event page's quantity inputs."""
    return list(dict.fromkeys(re.findall(r'name="item_(\d+)"', event_page.text)))


def order_status(order_page):
    """The status badge of pretix's order page, e.g. ('success', 'Paid')."""
    match = re.search(r'<span class="textbubble-(\w+)">\s*(?:<i[^>]*></i>)?\s*([^<]+?)\s*</span>', order_page.text)
    return (match.group(1), unescape(match.group(2))) if match else None


def backend_order_status(order_page):
    """The status label of the backend's order page, e.g. ('success', 'Paid')."""
    match = re.search(r'<h1>.*?class="label label-(\w+)[^"]*">\s*<span class="fa[^"]*"></span>\s*([^<]+?)\s*<',
                      order_page.text, re.S)
    return (match.group(1), unescape(match.group(2))) if match else None


def errors(response):
    found = re.findall(r'class="[^"]*(?:alert-danger|has-error|help-block)[^"]*"[^>]*>(.*?)<', response.text, re.S)
    return [unescape(f.strip()) for f in found if f.strip()][:5]


def wait_for(predicate, timeout=30, interval=0.25, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))
        time.sleep(interval)


class Organiser:
    """The backend login the demo printed."""

    def __init__(self, backend_url):
        self.backend_url = backend_url
        self.session = requests.Session()
        self.session.trust_env = False

    def log_in(self, email, password):
        page = self.session.get(urljoin(self.backend_url, 'login'), timeout=TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        data = {'csrfmiddlewaretoken': token, 'email': email, 'password': password}
        response = self.session.post(page.url, data=data, headers={'Referer': page.url}, timeout=TIMEOUT)
        assert response.status_code == 200 and '/login' not in response.url, (response.url, errors(response))
        return response

    def get(self, path):
        response = self.session.get(urljoin(self.backend_url, path), timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.status_code)
        return response
