"""Fixtures for running the generated NodeRails plugin inside a real pretix.

The plugin under test is whatever distribution provides the ``pretix.plugin`` entry point
for REALPRETIX_MODULE (default pretix_noderails) in this interpreter; its HTTP layer is
never mocked: it talks to a NodeRails simulator on 127.0.0.1 whose URLs are stored in the
provider settings (api_base_url / payment_ui_url), exactly like an organiser would.

Webhooks from the simulator reach pretix through Django's test client (same process,
same database transaction) by default; tests marked ``live_http`` deliver them over real
HTTP to pytest-django's live_server instead.
"""

import os
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils.timezone import now
from django_scopes import scopes_disabled

import pretix_testkit
from noderails_sim import Simulator
from pretix_testkit import LIVE, ORG, PRICE, TEST, configure_provider, create_shop, wait_until  # noqa: F401

MODULE = os.environ.get('REALPRETIX_MODULE', 'pretix_noderails')
IDENTIFIER = os.environ.get('REALPRETIX_PROVIDER', 'noderails')
WEBHOOK_SEGMENT = os.environ.get('REALPRETIX_WEBHOOK_PATH', 'noderails')

EVENT = 'conf'
WEBHOOK_URL_PATH = '/%s/%s/%s/webhook/' % (ORG, EVENT, WEBHOOK_SEGMENT)


def plugin(name=''):
    """The installed plugin module (or one of its submodules)."""
    return pretix_testkit.plugin(MODULE, name)


def setting_key(key):
    return pretix_testkit.setting_key(IDENTIFIER, key)


@pytest.fixture(autouse=True)
def _pretix_test_settings(settings):
    # The simulator lives on 127.0.0.1; pretix blocks private networks unless told otherwise
    # (pretix.helpers.monkeypatching.monkeypatch_urllib3_ssrf_protection reads this per call).
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = True
    # pretix.testutils.settings uses DummyCache, which makes every settings lookup (hierarkey)
    # a query: ~3x slower checkouts. A per-test LocMemCache is also closer to production
    # (redis), where the plugin's status-poll cache and rate limit are active.
    settings.CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache',
                                   'LOCATION': 'realpretix'}}
    from django.core.cache import cache
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shop(db):
    """Organizer, live USD event with the plugin enabled, one 12.50 item in a quota of 10."""
    return create_shop(MODULE, event_slug=EVENT)


class DjangoClientSender:
    """Simulator webhook transport into pretix in the same process (Django test client)."""

    def __init__(self):
        self.client = Client()

    def __call__(self, url, headers, body):
        path = urlsplit(url).path
        extra = {'HTTP_' + k.upper().replace('-', '_'): v for k, v in headers.items() if k.lower() != 'content-type'}
        response = self.client.post(path, data=body, content_type=headers.get('Content-Type', 'application/json'),
                                    **extra)
        return response.status_code, response.content, response.items()


@pytest.fixture
def sim():
    s = Simulator(
        credentials={LIVE.app_id: LIVE.api_key, TEST.app_id: TEST.api_key},
        webhook_url='http://testserver' + WEBHOOK_URL_PATH, webhook_secret=LIVE.secret,
        webhook_secrets={TEST.app_id: TEST.secret}, separate_ui=True, webhook_sender=DjangoClientSender(),
        signature_scheme=rendered('SIGNATURE_PAYLOAD'), timestamp_unit=rendered('TIMESTAMP_UNIT'),
    )
    s.start()
    yield s
    s.stop()


def rendered(name, module=None):
    """A value rendered from the forge config (conf.py, or webhook.py for the signature scheme)."""
    return pretix_testkit.plugin_constant(module or MODULE, name)


@pytest.fixture
def configured(shop, sim):
    """The provider enabled with simulator URLs and live + test credentials."""
    configure_provider(shop.event, IDENTIFIER, sim, app_id_test=TEST.app_id, api_key_test=TEST.api_key,
                       webhook_secret_test=TEST.secret)
    return shop


@pytest.fixture
def http_timeout(monkeypatch):
    """Shrink the plugin's rendered HTTP timeout (10 s in the stock config) for timeout tests.

    The value is a rendered config constant, not an HTTP mock: the plugin still makes real
    requests that really time out."""
    def set_timeout(seconds):
        # The provider reads conf's value whenever it builds a client (test_outage's guard checks that).
        monkeypatch.setattr(plugin('conf'), 'HTTP_TIMEOUT_SECONDS', seconds)
    return set_timeout


# -- the customer's browser --------------------------------------------------------------------------


class Customer:
    """Drives pretix's real checkout flow with Django's test client."""

    def __init__(self, shop):
        self.shop = shop
        self.client = Client()
        self.base = '/%s/%s' % (ORG, EVENT)

    def url(self, path):
        return self.base + path

    def add_to_cart(self, count=1):
        r = self.client.post(self.url('/cart/add'), {'item_%d' % self.shop.item.pk: str(count)})
        assert r.status_code == 302, r.status_code
        return r

    def add_items(self, items, voucher=None):
        """The shop's add-to-cart form with several products at once: {item: count}, optionally a voucher
        code. Fails with pretix's message when the cart refuses them."""
        data = {'item_%d' % item.pk: str(count) for item, count in items.items()}
        if voucher:
            data['_voucher_code'] = voucher
        r = self.client.post(self.url('/cart/add'), data)
        assert r.status_code == 302, r.status_code
        problems = [m for m in self.messages(self.follow(r)) if 'cart' not in m.lower() or 'not' in m.lower()]
        assert not problems, problems
        return r

    def cart_positions(self):
        """This customer's cart positions (pretix keeps the cart id in the session, per event)."""
        from pretix.base.models import CartPosition
        cart_id = self.client.session.get('current_cart_event_%d' % self.shop.event.pk)
        with scopes_disabled():
            return list(CartPosition.objects.filter(cart_id=cart_id, event=self.shop.event).order_by('pk'))

    def choose_addons(self, selection):
        """The add-on step: {cart position: {add-on item: count}}."""
        data = {'cp_%d_item_%d' % (pos.pk, item.pk): str(count)
                for pos, chosen in selection.items() for item, count in chosen.items()}
        r = self.client.post(self.url('/checkout/addons/'), data)
        assert r.status_code == 302 and '/checkout/addons/' not in r['Location'], self.messages(self.follow(r))
        return r

    def use_gift_card(self, code):
        """Pay part (or all) of the order with a gift card on the payment step, as pretix offers it:
        in the code field its payment step has (its name differs between pretix releases)."""
        page = self.client.get(self.url('/checkout/payment/')).content.decode()
        field = re.search(r'<input\b[^>]*\bname="([^"]*giftcard[^"]*)"', page)
        assert field, 'the payment step offers no gift card code field'
        r = self.client.post(self.url('/checkout/payment/'), {'payment': 'giftcard', field.group(1): code})
        assert r.status_code == 302, self.messages(r)
        return r

    def questions(self, email='buyer@example.org'):
        r = self.client.post(self.url('/checkout/questions/'), {'email': email, 'email_repeat': email})
        assert r.status_code == 302, _errors(r)
        return r

    def choose_payment(self, provider=IDENTIFIER):
        return self.client.post(self.url('/checkout/payment/'), {'payment': provider})

    def confirm_page(self):
        return self.client.get(self.url('/checkout/confirm/'))

    def place_order(self):
        """POST the confirm step; returns (response, order)."""
        from pretix.base.models import Order
        r = self.client.post(self.url('/checkout/confirm/'))
        with scopes_disabled():
            order = Order.objects.filter(event=self.shop.event).order_by('-pk').first()
        return r, order

    def to_confirm(self):
        """Cart -> questions -> choose the NodeRails method; returns the payment step response."""
        self.add_to_cart()
        self.questions()
        return self.choose_payment()

    def pending_order(self):
        """Place an order while the NodeRails session is still OPEN: the payment waits for its webhook.
        Returns (order, payment, session id)."""
        self.to_confirm()
        sid = self.state['session_id']
        r, order = self.place_order()
        self.complete(r)
        with scopes_disabled():
            order.refresh_from_db()
            payment = order.payments.get()
        assert order.status == 'n' and payment.state in ('created', 'pending'), (order.status, payment.state)
        return order, payment, sid

    def complete(self, response):
        """After placing the order: only the pay/complete step (execute_payment), not the order page."""
        if response.status_code in (301, 302, 303) and '/complete' in response['Location']:
            return self.client.get(response['Location'])
        return response

    def follow(self, response, limit=5):
        """Follow redirects with GET (the browser's part after placing the order)."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303):
                break
            response = self.client.get(response['Location'])
        return response

    @property
    def state(self):
        return self.client.session.get(plugin('payment').SESSION_KEY)

    def messages(self, response):
        return [str(m) for m in getattr(response, 'context', None) and response.context.get('messages') or []]


def _errors(response):
    text = response.content.decode('utf-8', 'replace')
    found = re.findall(r'class="[^"]*(?:alert-danger|has-error|help-block)[^"]*"[^>]*>(.*?)<', text, re.S)
    return '%s %s' % (response.status_code, [f.strip() for f in found if f.strip()][:5])


@pytest.fixture
def customer(configured):
    return Customer(configured)


def age_for_reconciliation(*payments):
    """Backdate payments past the plugin's RECONCILE_MIN_AGE, as if the webhook had had its chance."""
    from pretix.base.models import OrderPayment
    age = plugin('signals').RECONCILE_MIN_AGE + timedelta(minutes=1)
    with scopes_disabled():
        OrderPayment.objects.filter(pk__in=[p.pk for p in payments]).update(created=now() - age)


def make_order(shop, *, total=PRICE, testmode=False, state='created', status='n', expires_in=timedelta(days=3),
               code=None):
    """An order with one position and a NodeRails payment, created the way pretix's own tests do."""
    from pretix.base.models import Order, OrderPayment
    with scopes_disabled():
        order = Order.objects.create(
            event=shop.event, status=status, email='buyer@example.org', datetime=now(),
            expires=now() + expires_in, total=total, testmode=testmode, sales_channel=shop.web,
            locale='en', **({'code': code} if code else {}))
        order.positions.create(item=shop.item, price=total)
        payment = order.payments.create(provider=IDENTIFIER, amount=total, state=state)
    assert payment.state in (OrderPayment.PAYMENT_STATE_CREATED, state)
    return order, payment


@pytest.fixture
def admin(shop):
    """A logged-in backend user with every permission on the organizer."""
    from pretix.base.models import Team, User
    fields = {field.name for field in Team._meta.get_fields()}
    if 'all_event_permissions' in fields:
        grants = {'all_event_permissions': True, 'all_organizer_permissions': True}
    else:  # an older pretix has one flag per permission
        grants = {name: True for name in fields if name.startswith('can_')}
    with scopes_disabled():
        user = User.objects.create_user('admin@example.org', 'forge-admin-pw')
        team = shop.organizer.teams.create(name='Admins', all_events=True, **grants)
        team.members.add(user)
    client = Client()
    assert client.login(email='admin@example.org', password='forge-admin-pw')
    return client


def add_item(shop, name, price, **kwargs):
    """A product of the shop (not admission unless asked), in its quota."""
    with scopes_disabled():
        item = shop.event.items.create(name=name, default_price=Decimal(price), active=True,
                                       admission=kwargs.pop('admission', False), **kwargs)
        shop.quota.items.add(item)
    return item


def gift_card(shop, value):
    """A gift card of the organizer holding ``value``; its code."""
    with scopes_disabled():
        card = shop.organizer.issued_gift_cards.create(currency=shop.event.currency)
        card.transactions.create(value=Decimal(value), acceptor=shop.organizer)
    return card.secret


def refund_via_backend(admin, order, payment, amount, total=None):
    """What an organiser does: Order -> Refund -> partial amount (``total``, by default ``amount``)
    -> ``amount`` of it on the NodeRails payment -> Perform refund."""
    from django.db.models import Max
    with scopes_disabled():
        last = order.refunds.aggregate(m=Max('id'))['m'] or 0
    url = '/control/event/%s/%s/orders/%s/refund' % (ORG, EVENT, order.code)
    return admin.post(url, {
        'start-action': 'do_nothing', 'start-mode': 'partial', 'start-partial_amount': total or amount,
        'refund-%d' % payment.pk: amount, 'refund-manual': '0', 'refund-new-giftcard': '0',
        'refund-offsetting': '0', 'last_known_refund_id': str(last), 'perform': 'true', 'comment': '',
    })


class FormReader:
    """Collects a form's current values from HTML the way a browser would submit them."""

    def __init__(self, html, form_index=None, must_contain='name="csrfmiddlewaretoken"'):
        from html.parser import HTMLParser
        forms, current = [], None
        select = {'name': None}
        textarea = {'name': None}

        class P(HTMLParser):
            def handle_starttag(self, tag, attrs):
                nonlocal current
                a = dict(attrs)
                if tag == 'form':
                    current = {'fields': [], 'names': set()}
                    forms.append(current)
                if current is None:
                    return
                if tag == 'input' and a.get('name'):
                    current['names'].add(a['name'])
                    kind = (a.get('type') or 'text').lower()
                    if kind in ('checkbox', 'radio'):
                        if 'checked' in a:
                            current['fields'].append((a['name'], a.get('value', 'on')))
                    elif kind not in ('submit', 'button', 'file', 'image'):
                        current['fields'].append((a['name'], a.get('value') or ''))
                elif tag == 'select' and a.get('name'):
                    current['names'].add(a['name'])
                    select['name'] = a['name']
                elif tag == 'option' and select['name'] and 'selected' in a:
                    current['fields'].append((select['name'], a.get('value', '')))
                elif tag == 'textarea' and a.get('name'):
                    current['names'].add(a['name'])
                    textarea['name'] = a['name']
                    current['fields'].append((a['name'], ''))

            def handle_endtag(self, tag):
                if tag == 'select':
                    select['name'] = None
                if tag == 'textarea':
                    textarea['name'] = None

            def handle_data(self, data):
                if textarea['name'] and current is not None:
                    name, value = current['fields'][-1]
                    current['fields'][-1] = (name, value + data)

        P().feed(html)
        candidates = [f for f in forms if any(n == 'csrfmiddlewaretoken' for n in f['names'])] or forms
        self.form = candidates[form_index if form_index is not None else -1]
        self.names = self.form['names']

    def data(self, **overrides):
        out = {}
        for name, value in self.form['fields']:
            out.setdefault(name, []).append(value)
        for name, value in overrides.items():
            out[name] = value if isinstance(value, list) else [value]
        return out


def run_periodic_tasks(*modules):
    """Run the periodic_task receivers of the given plugin packages (default: the plugin under
    test) once each, as pretix's cron would.

    Only those receivers: pretix's own periodic tasks would fetch exchange rates from the
    internet. minimum_interval's memory of the last run is cleared first; exceptions propagate
    (the reconciliation raises on purpose when NodeRails is unavailable, to back off)."""
    from django.core.cache import cache
    from pretix.base.signals import periodic_task
    live = periodic_task._live_receivers(None)
    live = live[0] if isinstance(live, tuple) else live
    modules = modules or (plugin().__name__,)
    ours = {m: [r for r in live if getattr(r, '__module__', '').startswith(m + '.')] for m in modules}
    missing = [m for m, receivers in ours.items() if not receivers]
    assert not missing, 'no periodic_task receiver registered by %s' % missing
    cache.clear()
    for module in modules:
        for receiver in ours[module]:
            receiver(signal=periodic_task, sender=None)
