"""What every suite that runs the plugin inside pretix shares: the shop's constants, the plugin
under test and its rendered constants, creating the shop, configuring the provider against a
NodeRails simulator, and waiting for something to happen.

Used by the real-pretix suite (RealPretix/realpretix.py), the browser suite
(Browser/browser_support.py, conftest.py) and the production harness (Production/harness.py).
Django and pretix are imported inside the functions: the browser suite imports this module
before Django is set up.
"""

import importlib
import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

ORG = 'forge'
PRICE = Decimal('12.50')
# Credentials the simulator accepts; the shop stores them like an organiser would.
LIVE = SimpleNamespace(app_id='app-live-0001', api_key='nr_live_sk_LIVEKEY', secret='whsec_LIVESECRET')
TEST = SimpleNamespace(app_id='app-test-0001', api_key='nr_test_sk_TESTKEY', secret='whsec_TESTSECRET')


def plugin(module, name=''):
    """The installed plugin module, or one of its submodules."""
    return importlib.import_module(module + ('.' + name if name else ''))


def plugin_constant(module, name):
    """A constant the plugin renders from its config: conf.py holds most, webhook.py the
    signature scheme's own (it imports nothing of the package, so the vector harness can load it)."""
    for submodule in ('conf', 'webhook'):
        value = getattr(plugin(module, submodule), name, None)
        if value is not None:
            return value
    raise AssertionError('%s renders no %s' % (module, name))


def setting_key(identifier, key):
    """pretix stores a provider's settings as payment_<identifier>_<key>."""
    return 'payment_%s_%s' % (identifier, key)


def create_shop(module, *, event_slug, event_name='Forge Conf', item_name='Ticket', quota_size=10,
                other_plugins='pretix.plugins.banktransfer'):
    """Organizer, live USD event with the plugin enabled, one PRICE item in a quota
    (``quota_size=None``: unlimited). Call inside scopes_disabled() or a test database."""
    from django.utils.timezone import now
    from django_scopes import scopes_disabled
    from pretix.base.models import Event, Organizer
    with scopes_disabled():
        organizer = Organizer.objects.create(name='Forge Org', slug=ORG)
        event = Event.objects.create(
            organizer=organizer, name=event_name, slug=event_slug, currency='USD', live=True,
            date_from=now() + timedelta(days=30), plugins=other_plugins,
        )
        event.enable_plugin(module)
        event.save()
        item = event.items.create(name=item_name, default_price=PRICE, admission=True, active=True)
        quota = event.quotas.create(name='Tickets', size=quota_size)
        quota.items.add(item)
        event.settings.set('attendee_names_asked', False)
        event.settings.set('payment_term_days', 3)
        web = organizer.sales_channels.get(identifier='web')
    return SimpleNamespace(organizer=organizer, event=event, item=item, quota=quota, web=web)


def configure_provider(event, identifier, sim, credentials=LIVE, **overrides):
    """Enable the provider on ``event`` and point it at the simulator ``sim``, as an organiser
    fills in the settings form; ``overrides`` replace or add settings (e.g. test credentials)."""
    values = {
        '_enabled': True, 'api_base_url': sim.api_url, 'payment_ui_url': sim.ui_url, 'currency': 'USD',
        'app_id': credentials.app_id, 'api_key': credentials.api_key, 'webhook_secret': credentials.secret,
    }
    values.update(overrides)
    for key, value in values.items():
        event.settings.set(setting_key(identifier, key), value)
    return values


def wait_until(predicate, timeout=20, interval=0.02, message='condition'):
    """Poll ``predicate`` until it returns something truthy and return that; AssertionError
    naming ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1f s waiting for %s' % (timeout, message))
        time.sleep(interval)
