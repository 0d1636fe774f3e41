"""The plugin inside pretix: registered, configured in the backend, creating a checkout session
at a local fake of the NodeRails API, confirmed by a signed webhook exactly once, embedded on the
confirm page under a merged Content-Security-Policy.

Runs under pretix.testutils.settings where pretix and pytest-django are installed
(.github/workflows/tests.yml installs them); everywhere else this module is skipped, with the
reason in `pytest -rs`. Every step goes through pretix's public surfaces: its backend and shop
pages, the plugin's webhook URL, and pretix's models.
"""

import pytest

pytest.importorskip('pretix', reason='pretix is not installed; these tests run inside pretix: pip install pretix pytest-django')
pytest.importorskip('pytest_django', reason='pytest-django is not installed: pip install pytest-django')

import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from django.test import Client  # noqa: E402
from django.utils.timezone import now  # noqa: E402
from django_scopes import scopes_disabled  # noqa: E402

IDENTIFIER = '<% provider.identifier %>'
MODULE = '<% package.module %>'
CURRENCY = '<% noderails.currency %>'
# The signature scheme this plugin was generated with (see <% package.module %>/conf.py).
SIGNATURE_PAYLOAD = '<% webhook.signature_payload %>'
TIMESTAMP_UNIT = '<% webhook.timestamp_unit %>'

ORGANIZER, EVENT = 'forge-org', 'forge-event'
SHOP = '/%s/%s' % (ORGANIZER, EVENT)
WEBHOOK_URL = '%s/<% provider.webhook_path %>/webhook/' % SHOP
PRICE = Decimal('12.00')
APP_ID, API_KEY, WEBHOOK_SECRET = 'app_integration', 'nr_live_sk_integration', 'whsec_integration'

pytestmark = pytest.mark.django_db


def setting(key):
    return 'payment_%s_%s' % (IDENTIFIER, key)


# -- a local NodeRails ---------------------------------------------------------------------------


class FakeNodeRails:
    """The NodeRails API routes the plugin calls, on 127.0.0.1, recording every request."""

    def __init__(self):
        self.requests = []
        self.sessions = {}
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server.server_port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def created_sessions(self):
        return [r for r in self.requests if r['method'] == 'POST' and r['path'] == '/checkout-sessions']

    def pay(self, session_id):
        """The customer pays in the hosted checkout."""
        self.sessions[session_id].update(status='PAID', paymentIntentId='pi_' + session_id)

    def answer(self, method, path, body):
        if method == 'POST' and path == '/checkout-sessions':
            session_id = 'cs_fake_%d' % (len(self.sessions) + 1)
            self.sessions[session_id] = {'sessionId': session_id, 'status': 'OPEN', 'amount': body['amount'],
                                         'currency': body['currency'], 'paymentIntentId': None}
            return 201, {'sessionId': session_id, 'status': 'OPEN', 'expiresAt': (now() + timedelta(hours=1)).isoformat()}
        prefix = '/checkout-sessions/public/'
        if method == 'GET' and path.startswith(prefix) and path[len(prefix):] in self.sessions:
            return 200, self.sessions[path[len(prefix):]]
        return 404, {'message': 'not found'}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                body = json.loads(raw) if raw else None
                fake.requests.append({'method': self.command, 'path': self.path, 'headers': dict(self.headers), 'json': body})
                status, answer = fake.answer(self.command, self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def noderails():
    fake = FakeNodeRails().start()
    yield fake
    fake.stop()


# -- pretix ---------------------------------------------------------------------------------------


@pytest.fixture
def event(db):
    """A live event in the plugin's currency with the plugin enabled and one ticket on sale."""
    from pretix.base.models import Event, Organizer

    with scopes_disabled():
        organizer = Organizer.objects.create(name='Forge', slug=ORGANIZER)
        event = Event.objects.create(organizer=organizer, name='Forge Conference', slug=EVENT, currency=CURRENCY, live=True,
                                     date_from=now() + timedelta(days=30))
        event.enable_plugin(MODULE)
        event.save()
        item = event.items.create(name='Ticket', default_price=PRICE, admission=True, active=True)
        event.quotas.create(name='Tickets', size=10).items.add(item)
        event.settings.set('attendee_names_asked', False)
    return event


@pytest.fixture
def configured(event, noderails):
    """The provider switched on, talking to the fake NodeRails."""
    values = {'_enabled': True, 'api_base_url': noderails.url, 'payment_ui_url': noderails.url,
              'app_id': APP_ID, 'api_key': API_KEY, 'webhook_secret': WEBHOOK_SECRET}
    for key, value in values.items():
        event.settings.set(setting(key), value)
    return event


@pytest.fixture
def organiser(event):
    """A backend user in a team with every permission on the organizer."""
    from pretix.base.models import Team, User

    # pretix 2026 grants permissions through all_*_permissions, earlier releases through can_* flags.
    fields = {field.name for field in Team._meta.get_fields()}
    permissions = {name: True for name in fields if name.startswith('can_') or name in ('all_event_permissions', 'all_organizer_permissions')}
    with scopes_disabled():
        user = User.objects.create_user('organiser@example.org', 'integration-password')
        team = event.organizer.teams.create(name='Organisers', all_events=True, **permissions)
        team.members.add(user)
    client = Client()
    assert client.login(email='organiser@example.org', password='integration-password')
    return client


class Shopper:
    """A customer walking through pretix's checkout with Django's test client."""

    def __init__(self, event):
        self.event = event
        self.client = Client()

    def to_confirm_page(self):
        with scopes_disabled():
            item = self.event.items.get()
        assert self.client.post(SHOP + '/cart/add', {'item_%d' % item.pk: '1'}).status_code == 302
        answers = {'email': 'buyer@example.org', 'email_repeat': 'buyer@example.org'}
        assert self.client.post(SHOP + '/checkout/questions/', answers).status_code == 302
        chosen = self.client.post(SHOP + '/checkout/payment/', {'payment': IDENTIFIER})
        assert chosen.status_code == 302 and chosen['Location'].endswith('/checkout/confirm/'), chosen.status_code
        return self.client.get(SHOP + '/checkout/confirm/')

    def place_order(self):
        from pretix.base.models import Order

        placed = self.client.post(SHOP + '/checkout/confirm/')
        assert placed.status_code == 302, placed.status_code
        if '/complete' in placed['Location']:
            self.client.get(placed['Location'])
        with scopes_disabled():
            return Order.objects.get(event=self.event)


def signed_delivery(body):
    """Headers of a delivery signed the way NodeRails signs, computed here with the standard library."""
    stamp = str(int(time.time() * (1000 if TIMESTAMP_UNIT == 'ms' else 1)))
    signed = (stamp + '.').encode() + body if SIGNATURE_PAYLOAD == 'timestamp.body' else body
    signature = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return {'HTTP_X_NODERAILS_SIGNATURE': signature, 'HTTP_X_NODERAILS_TIMESTAMP': stamp}


def content_security_policy(response):
    policy = {}
    for directive in response['Content-Security-Policy'].split(';'):
        name, _, sources = directive.strip().partition(' ')
        policy[name] = sources.split()
    return policy


class FormFields(HTMLParser):
    """The fields of a page's form with a CSRF token, as a browser would submit them."""

    def __init__(self, html):
        super().__init__()
        self.forms = []
        self.feed(html)
        self.fields = next(f for f in reversed(self.forms) if 'csrfmiddlewaretoken' in f)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'form':
            self.forms.append({})
        elif self.forms and tag in ('input', 'textarea', 'select') and attrs.get('name'):
            kind = (attrs.get('type') or 'text').lower()
            if kind in ('checkbox', 'radio') and 'checked' not in attrs:
                return
            if kind not in ('submit', 'button', 'file'):
                self.forms[-1].setdefault(attrs['name'], attrs.get('value') or '')


# -- the tests ------------------------------------------------------------------------------------


def test_provider_is_registered_and_its_settings_save(event, organiser):
    assert IDENTIFIER in event.get_payment_providers()
    url = '/control/event/%s/%s/settings/payment/%s' % (ORGANIZER, EVENT, IDENTIFIER)
    page = organiser.get(url)
    assert page.status_code == 200
    fields = FormFields(page.content.decode()).fields
    fields.update({setting('_enabled'): 'on', setting('app_id'): APP_ID, setting('api_key'): API_KEY,
                   setting('webhook_secret'): WEBHOOK_SECRET})
    saved = organiser.post(url, fields)
    assert saved.status_code == 302, 'the settings form was refused'
    event.settings.flush()
    assert event.settings.get(setting('_enabled'), as_type=bool) is True
    assert (event.settings.get(setting('app_id')), event.settings.get(setting('api_key'))) == (APP_ID, API_KEY)
    assert event.settings.get(setting('webhook_secret')) == WEBHOOK_SECRET
    assert API_KEY not in organiser.get(url).content.decode(), 'a stored secret is shown again'


def test_checkout_creates_a_session_at_noderails(configured, noderails):
    Shopper(configured).to_confirm_page()
    created = noderails.created_sessions()
    assert len(created) == 1
    request = created[0]
    headers = {name.lower(): value for name, value in request['headers'].items()}
    assert (headers['x-app-id'], headers['x-api-key']) == (APP_ID, API_KEY)
    assert headers.get('idempotency-key'), 'a retried request must not create a second session'
    assert Decimal(request['json']['amount']) == PRICE and request['json']['currency'] == CURRENCY


def test_signed_webhook_confirms_the_payment_once(configured, noderails):
    from pretix.base.models import Order, OrderPayment

    shopper = Shopper(configured)
    shopper.to_confirm_page()
    session_id = next(iter(noderails.sessions))
    order = shopper.place_order()
    assert order.status == Order.STATUS_PENDING, 'nothing was paid yet'
    noderails.pay(session_id)
    body = json.dumps({'id': 'evt_integration_1', 'type': 'payment.captured', 'data': {
        'id': 'pi_' + session_id, 'paymentIntentId': 'pi_' + session_id, 'checkoutSessionId': session_id,
        'status': 'CAPTURED', 'amount': str(PRICE), 'currency': CURRENCY,
    }}).encode()
    webhook = Client()

    first = webhook.post(WEBHOOK_URL, data=body, content_type='application/json', **signed_delivery(body))
    assert first.status_code == 200
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == Order.STATUS_PAID
        confirmed = order.payments.filter(state=OrderPayment.PAYMENT_STATE_CONFIRMED)
        assert confirmed.count() == 1 and confirmed.get().amount == PRICE
        entries = order.all_logentries().count()

    redelivered = webhook.post(WEBHOOK_URL, data=body, content_type='application/json', **signed_delivery(body))
    assert redelivered.status_code == 200
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == Order.STATUS_PAID
        assert order.payments.filter(state=OrderPayment.PAYMENT_STATE_CONFIRMED).count() == 1
        assert order.all_logentries().count() == entries, 'the redelivery changed the order'


def test_unsigned_webhook_changes_nothing(configured, noderails):
    from pretix.base.models import Order

    shopper = Shopper(configured)
    shopper.to_confirm_page()
    session_id = next(iter(noderails.sessions))
    order = shopper.place_order()
    noderails.pay(session_id)
    body = json.dumps({'id': 'evt_forged', 'type': 'payment.captured', 'data': {
        'checkoutSessionId': session_id, 'status': 'CAPTURED', 'amount': str(PRICE), 'currency': CURRENCY}}).encode()
    forged = dict(signed_delivery(body), HTTP_X_NODERAILS_SIGNATURE='0' * 64)
    refused = Client().post(WEBHOOK_URL, data=body, content_type='application/json', **forged)
    assert (refused.status_code, refused.content) == (400, b'Invalid signature')
    with scopes_disabled():
        order.refresh_from_db()
        assert order.status == Order.STATUS_PENDING


def test_confirm_page_embeds_the_checkout_under_a_merged_csp(configured, noderails):
    page = Shopper(configured).to_confirm_page()
    assert page.status_code == 200
    session_id = next(iter(noderails.sessions))
    html = page.content.decode()
    assert '<iframe' in html and 'src="%s/checkout/%s"' % (noderails.url, session_id) in html
    policy = content_security_policy(page)
    assert noderails.url in policy['frame-src'], 'the NodeRails checkout origin is not allowed to be framed'
    assert noderails.url in policy['connect-src']
    # Merged into pretix's own policy, not replacing it.
    assert "'self'" in policy['script-src'] and "'unsafe-inline'" not in policy['script-src']
    assert "'self'" in policy['default-src']
