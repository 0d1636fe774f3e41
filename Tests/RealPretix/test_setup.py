"""Installation and configuration: entry point, per-event enablement, settings form, migrations."""

import re
from importlib import metadata

import pytest
from realpretix import IDENTIFIER, LIVE, MODULE, ORG, TEST, WEBHOOK_URL_PATH, FormReader, setting_key
from django.conf import settings as django_settings
from django.test import Client
from django.utils.timezone import now
from django_scopes import scopes_disabled

SETTINGS_FIELDS = ('api_base_url', 'payment_ui_url', 'currency', 'app_id', 'api_key', 'webhook_secret',
                   'app_id_test', 'api_key_test', 'webhook_secret_test')
SECRETS = ('api_key', 'webhook_secret', 'api_key_test', 'webhook_secret_test')


def test_plugin_found_via_entry_point():
    eps = [ep for ep in metadata.entry_points(group='pretix.plugin') if ep.module == MODULE]
    assert len(eps) == 1, 'exactly one pretix.plugin entry point for %s' % MODULE
    assert MODULE in django_settings.INSTALLED_APPS  # pretix adds entry-point modules at start-up
    from pretix.base.plugins import get_all_plugins
    meta = next(m for m in get_all_plugins() if m.module == MODULE)
    assert meta.category == 'PAYMENT' and meta.visible
    assert meta.version == metadata.version(eps[0].dist.name)
    assert str(meta.name) and str(meta.description)


@pytest.mark.django_db
def test_enabled_per_event_only(shop, sim):
    from pretix.base.models import Event
    with scopes_disabled():
        other = Event.objects.create(organizer=shop.organizer, name='Other', slug='other', currency='USD',
                                     date_from=now(), live=True)
        assert IDENTIFIER not in other.get_payment_providers()
        provider = shop.event.get_payment_providers()[IDENTIFIER]
        assert type(provider).__module__.startswith(MODULE)
    # plugin URLs exist only where the plugin is enabled
    assert Client().post('/%s/other/%s/webhook/' % (ORG, WEBHOOK_URL_PATH.split('/')[3]), data=b'{}',
                         content_type='application/json').status_code == 404
    assert Client().post(WEBHOOK_URL_PATH, data=b'{}', content_type='application/json').status_code != 404
    with scopes_disabled():
        other.enable_plugin(MODULE)
        other.save()
        assert IDENTIFIER in Event.objects.get(pk=other.pk).get_payment_providers()
        shop.event.disable_plugin(MODULE)
        shop.event.save()
        assert IDENTIFIER not in Event.objects.get(pk=shop.event.pk).get_payment_providers()


@pytest.mark.django_db
def test_provider_settings_form_has_every_field_and_never_echoes_secrets(shop, sim, admin):
    url = '/control/event/%s/%s/settings/payment/%s' % (ORG, shop.event.slug, IDENTIFIER)
    r = admin.get(url)
    assert r.status_code == 200
    form = FormReader(r.content.decode())
    for key in SETTINGS_FIELDS + ('_enabled',):
        assert setting_key(key) in form.names, key
    # the webhook URL the organiser must register is shown
    assert WEBHOOK_URL_PATH in r.content.decode()

    values = {
        setting_key('_enabled'): 'on', setting_key('api_base_url'): sim.api_url,
        setting_key('payment_ui_url'): sim.ui_url, setting_key('currency'): 'USD',
        setting_key('app_id'): LIVE.app_id, setting_key('api_key'): LIVE.api_key,
        setting_key('webhook_secret'): LIVE.secret, setting_key('app_id_test'): TEST.app_id,
        setting_key('api_key_test'): TEST.api_key, setting_key('webhook_secret_test'): TEST.secret,
    }
    r = admin.post(url, form.data(**values))
    assert r.status_code == 302, _form_errors(r)
    with scopes_disabled():
        stored = shop.event.settings
        stored.flush()
        for key in SECRETS:
            assert stored.get(setting_key(key)) == values[setting_key(key)]
        assert stored.get(setting_key('_enabled'), as_type=bool) is True

    html = admin.get(url).content.decode()
    for secret in (LIVE.api_key, LIVE.secret, TEST.api_key, TEST.secret):
        assert secret not in html, 'stored secret rendered back into the settings page'
    assert LIVE.app_id in html  # non-secret fields are shown

    # saving the page as shown (redacted placeholders) keeps the stored secrets
    r = admin.post(url, FormReader(html).data())
    assert r.status_code == 302, _form_errors(r)
    with scopes_disabled():
        stored.flush()
        for key in SECRETS:
            assert stored.get(setting_key(key)) == values[setting_key(key)]


@pytest.mark.django_db
def test_enabling_without_live_credentials_is_refused(shop, admin):
    url = '/control/event/%s/%s/settings/payment/%s' % (ORG, shop.event.slug, IDENTIFIER)
    form = FormReader(admin.get(url).content.decode())
    r = admin.post(url, form.data(**{setting_key('_enabled'): 'on', setting_key('app_id'): '',
                                     setting_key('api_key'): '', setting_key('webhook_secret'): ''}))
    assert r.status_code == 200  # form shown again with an error
    with scopes_disabled():
        shop.event.settings.flush()
        assert not shop.event.settings.get(setting_key('_enabled'), as_type=bool)


@pytest.mark.django_db
@pytest.mark.parametrize('url_value', ['http://api.example.com', 'https://user:pw@api.example.com',
                                       'https://api.example.com/?x=1', 'javascript:alert(1)'])
def test_settings_reject_unsafe_service_urls(shop, admin, url_value):
    url = '/control/event/%s/%s/settings/payment/%s' % (ORG, shop.event.slug, IDENTIFIER)
    form = FormReader(admin.get(url).content.decode())
    r = admin.post(url, form.data(**{setting_key('api_base_url'): url_value}))
    assert r.status_code == 200
    with scopes_disabled():
        shop.event.settings.flush()
        assert shop.event.settings.get(setting_key('api_base_url')) != url_value


@pytest.mark.django_db
def test_makemigrations_check_finds_nothing_missing(settings):
    """The shipped migrations match the models (pretix's test settings disable migrations; re-enable)."""
    from django.core.management import call_command
    from django.db.migrations.loader import MigrationLoader
    settings.MIGRATION_MODULES = {}
    # Building the graph refuses unknown dependencies; one leaf whose plan from an empty database
    # holds every shipped migration is one linear, complete history.
    loader = MigrationLoader(None, ignore_no_migrations=True)
    own = [key for key in loader.disk_migrations if key[0] == MODULE]
    assert own, 'the plugin ships no migrations although it has models'
    assert loader.detect_conflicts() == {}
    [leaf] = loader.graph.leaf_nodes(MODULE)
    assert sorted(key for key in loader.graph.forwards_plan(leaf) if key[0] == MODULE) == sorted(own)
    try:
        call_command('makemigrations', MODULE, check=True, dry_run=True, verbosity=0)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail('makemigrations --check %s found missing migrations (exit %s)' % (MODULE, exc.code))


def _form_errors(response):
    text = response.content.decode('utf-8', 'replace')
    return re.findall(r'class="(?:help-block|alert alert-danger)[^"]*">\s*(.*?)\s*<', text, re.S)[:8]
