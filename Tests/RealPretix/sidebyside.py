"""Helpers for test_side_by_side.py: a second generated variant installed next to the plugin under test.

Variant A is the suite's plugin under test (REALPRETIX_MODULE / _PROVIDER / _WEBHOOK_PATH, the ``sim`` and
``configured`` fixtures of realpretix.py). Variant B is named by REALPRETIX_SECOND_MODULE,
REALPRETIX_SECOND_PROVIDER and REALPRETIX_SECOND_WEBHOOK_PATH and gets its own simulator and its own
credentials, so a signature made for one variant can never verify at the other.
"""

import importlib
import os
from importlib import metadata
from types import SimpleNamespace

import pytest
from django_scopes import scopes_disabled

from noderails_sim import Simulator
from realpretix import (
    EVENT,
    IDENTIFIER,
    LIVE,
    MODULE,
    ORG,
    TEST,
    WEBHOOK_SEGMENT,
    Customer,
    DjangoClientSender,
    rendered,
)

SECOND_MODULE = os.environ.get('REALPRETIX_SECOND_MODULE', '')
SECOND_IDENTIFIER = os.environ.get('REALPRETIX_SECOND_PROVIDER', '')
SECOND_WEBHOOK_SEGMENT = os.environ.get('REALPRETIX_SECOND_WEBHOOK_PATH', '')
REQUIRED = os.environ.get('REALPRETIX_REQUIRE_SIDE_BY_SIDE') == '1'

# Different app ids, keys and secrets from variant A's (realpretix.LIVE / TEST): each variant is a
# separate NodeRails app, as an organiser running both would have.
B_LIVE = SimpleNamespace(app_id='app-live-b-0002', api_key='nr_live_sk_SECONDKEY', secret='whsec_SECONDLIVE')
B_TEST = SimpleNamespace(app_id='app-test-b-0002', api_key='nr_test_sk_SECONDKEY', secret='whsec_SECONDTEST')


def missing_configuration():
    """Why the side-by-side tests cannot run, or '' when they can."""
    if not SECOND_MODULE:
        return ('REALPRETIX_SECOND_MODULE is not set: no second variant to install side by side '
                '(see Tests/RealPretix/run.sh, REALPRETIX_EXTRA_PLUGINS)')
    if not (SECOND_IDENTIFIER and SECOND_WEBHOOK_SEGMENT):
        return 'REALPRETIX_SECOND_MODULE is set, so REALPRETIX_SECOND_PROVIDER and _WEBHOOK_PATH must be too'
    return ''


class Variant:
    """One generated plugin as installed: its module, provider identifier and webhook URL segment."""

    def __init__(self, module, identifier, segment, live, test):
        self.module, self.identifier, self.segment = module, identifier, segment
        self.live, self.test = live, test

    def __repr__(self):
        return 'Variant(%s)' % self.module

    def plugin(self, name=''):
        return importlib.import_module(self.module + ('.' + name if name else ''))

    def setting_key(self, key):
        return 'payment_%s_%s' % (self.identifier, key)

    @property
    def settings_prefix(self):
        return 'payment_%s_' % self.identifier

    def path(self, what='webhook', event=EVENT):
        return '/%s/%s/%s/%s/' % (ORG, event, self.segment, what)

    @property
    def webhook_url(self):
        return 'http://testserver' + self.path()

    def entry_point(self):
        eps = [ep for ep in metadata.entry_points(group='pretix.plugin') if ep.name == self.module]
        assert len(eps) == 1, 'expected one pretix.plugin entry point named %s, found %r' % (self.module, eps)
        return eps[0]

    def models(self):
        mod = self.plugin('models')
        return mod.NodeRailsReference, mod.ProcessedWebhookEvent

    def make_simulator(self):
        return Simulator(
            credentials={self.live.app_id: self.live.api_key, self.test.app_id: self.test.api_key},
            webhook_url=self.webhook_url, webhook_secret=self.live.secret,
            webhook_secrets={self.test.app_id: self.test.secret}, separate_ui=True,
            webhook_sender=DjangoClientSender(), signature_scheme=rendered('SIGNATURE_PAYLOAD', self.module),
            timestamp_unit=rendered('TIMESTAMP_UNIT', self.module),
        )

    @property
    def currency(self):
        """The currency the variant was rendered for ([noderails] currency)."""
        return rendered('CURRENCY', self.module)

    def configure(self, event, sim):
        """What an organiser enters on the variant's settings page; the currency stays the rendered one."""
        values = {
            '_enabled': True, 'api_base_url': sim.api_url, 'payment_ui_url': sim.ui_url,
            'app_id': self.live.app_id, 'api_key': self.live.api_key, 'webhook_secret': self.live.secret,
            'app_id_test': self.test.app_id, 'api_key_test': self.test.api_key,
            'webhook_secret_test': self.test.secret,
        }
        for key, value in values.items():
            event.settings.set(self.setting_key(key), value)


A = Variant(MODULE, IDENTIFIER, WEBHOOK_SEGMENT, LIVE, TEST)
B = Variant(SECOND_MODULE, SECOND_IDENTIFIER, SECOND_WEBHOOK_SEGMENT, B_LIVE, B_TEST)


@pytest.fixture
def sim_b():
    s = B.make_simulator()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def both(configured, sim, sim_b):
    """One event in the currency variant B was rendered for (acme-tickets.toml: EUR), with variant A
    (realpretix's ``configured``, its currency set to the event's by the organiser) and variant B enabled
    and configured, each against its own simulator."""
    with scopes_disabled():
        event = configured.event
        event.currency = B.currency
        event.enable_plugin(B.module)
        event.save()
        event.settings.set(A.setting_key('currency'), B.currency)
        B.configure(event, sim_b)
    return SimpleNamespace(shop=configured, event=event, sims={A.module: sim, B.module: sim_b})


class VariantCustomer(Customer):
    """realpretix.Customer choosing a given variant's payment method."""

    def __init__(self, shop, variant):
        super().__init__(shop)
        self.variant = variant

    def to_confirm(self):
        self.add_to_cart()
        self.questions()
        r = self.choose_payment(self.variant.identifier)
        assert r.status_code == 302 and r['Location'].endswith('/checkout/confirm/'), \
            (self.variant, r.status_code, self.messages(self.follow(r)))
        return r

    @property
    def state(self):
        return self.client.session.get(self.variant.plugin('payment').SESSION_KEY)

    def pending_order(self):
        order, payment, sid = super().pending_order()
        assert payment.provider == self.variant.identifier
        return order, payment, sid
