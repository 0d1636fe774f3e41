"""Two generated variants in one pretix (issue 7, "Side by side").

Variant A is the plugin under test, variant B a second render with its own module, identifier and webhook
path (REALPRETIX_SECOND_MODULE etc., installed by run.sh from REALPRETIX_EXTRA_PLUGINS). Both are installed
from their sdists, enabled on one event, paid through, and each webhook may only ever touch its own payments.
"""

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest
from django.conf import settings as django_settings
from django.utils.html import escape
from django_scopes import scopes_disabled
from realpretix import ORG, FormReader, age_for_reconciliation, run_periodic_tasks
from sidebyside import A, B, REQUIRED, VariantCustomer, missing_configuration

VARIANTS = (A, B)


@pytest.fixture(autouse=True)
def _second_variant_configured():
    # Skipping is only acceptable for ad-hoc runs; `make test` sets REALPRETIX_REQUIRE_SIDE_BY_SIDE=1 so a
    # lost second plugin cannot turn the whole proof into silent skips.
    reason = missing_configuration()
    if reason and REQUIRED:
        pytest.fail(reason + ' (REALPRETIX_REQUIRE_SIDE_BY_SIDE=1)')
    if reason:
        pytest.skip(reason)


# -- installation ------------------------------------------------------------------------------------


def test_variants_differ_in_every_name():
    assert A.module != B.module
    assert A.identifier != B.identifier
    assert A.segment != B.segment
    # pretix keeps provider settings as flat keys; one prefix extending the other would let a variant read
    # (or a settings page overwrite) the other's values.
    assert not A.settings_prefix.startswith(B.settings_prefix)
    assert not B.settings_prefix.startswith(A.settings_prefix)


def test_both_distributions_installed_from_sdists_and_found_via_entry_points():
    dists = []
    for v in VARIANTS:
        ep = v.entry_point()
        assert ep.value == '%s:PretixPluginMeta' % v.module
        dist = ep.dist
        dists.append(dist.name)
        assert dist.version == v.plugin().__version__, (v, dist.version)
        # pip records where a distribution came from; an sdist install names the .tar.gz it was built from.
        origin = json.loads(dist.read_text('direct_url.json') or 'null')
        assert origin and origin.get('url', '').endswith('.tar.gz') and 'archive_info' in origin, \
            '%s (%s) was not installed from an sdist: %r' % (dist.name, v.module, origin)
        shipped = {str(f) for f in dist.files or ()}
        for name in ('__init__.py', 'payment.py', 'migrations/0001_initial.py'):
            assert '%s/%s' % (v.module, name) in shipped, (dist.name, name)
    assert len(set(dists)) == 2, dists
    # B is only ever installed, never shadowed by REALPRETIX_SRC: its code must be the distribution's copy.
    ep = B.entry_point()
    installed = os.path.realpath(str(ep.dist.locate_file('%s/__init__.py' % B.module)))
    assert os.path.realpath(B.plugin().__file__) == installed


def test_both_apps_installed_with_distinct_labels():
    from django.apps import apps
    from pretix.base.plugins import get_all_plugins
    configs = [apps.get_app_config(v.module) for v in VARIANTS]
    for v, config in zip(VARIANTS, configs):
        assert v.module in django_settings.INSTALLED_APPS
        assert config.name == v.module and config.label == v.module
        assert type(config).__module__ == v.module + '.apps'
    assert configs[0].label != configs[1].label
    metas = {m.module: m for m in get_all_plugins()}
    assert A.module in metas and B.module in metas
    assert metas[A.module].version == metadata.version(A.entry_point().dist.name)
    assert metas[B.module].version == metadata.version(B.entry_point().dist.name)


def test_system_checks_pass_with_both_installed():
    """`python -m pretix migrate` (and check, runserver) refuse to run on any system-check error, so one
    clashing model field would make a pretix with both variants impossible to upgrade."""
    from django.core import checks
    ours = (A.module, B.module)
    problems = [
        '%s: %s' % (m.id, m.msg) for m in checks.run_checks()
        if m.level >= checks.ERROR and any(name in str(m.obj) or name in m.msg for name in ours)
    ]
    assert not problems, '\n'.join(problems)


# -- one event, both providers ----------------------------------------------------------------------


@pytest.mark.django_db
def test_both_providers_registered_on_one_event_with_their_own_settings(both, sim, sim_b):
    with scopes_disabled():
        providers = both.event.get_payment_providers()
    for v in VARIANTS:
        provider = providers[v.identifier]
        assert type(provider).__module__ == v.module + '.payment'
        assert provider.identifier == v.identifier
        assert provider.is_enabled
    pa, pb = providers[A.identifier], providers[B.identifier]
    # Each reads its own keys: the simulators' URLs and secrets were stored per variant.
    assert (pa.api_base_url, pb.api_base_url) == (sim.api_url, sim_b.api_url)
    assert (pa.payment_ui_url, pb.payment_ui_url) == (sim.ui_url, sim_b.ui_url)
    assert pa.credentials(False) == (A.live.app_id, A.live.api_key, A.live.secret)
    assert pb.credentials(False) == (B.live.app_id, B.live.api_key, B.live.secret)
    assert pb.credentials(True) == (B.test.app_id, B.test.api_key, B.test.secret)
    with scopes_disabled():
        keys = [k for k in both.event.settings.freeze() if k.startswith('payment_')]
    assert any(k.startswith(A.settings_prefix) for k in keys)
    assert any(k.startswith(B.settings_prefix) for k in keys)


@pytest.mark.django_db
def test_saving_one_variants_settings_page_leaves_the_other_alone(both, admin):
    """The backend settings page of each variant has only its own fields, and saving it changes none of the
    other variant's stored values."""
    for v, other in ((B, A), (A, B)):
        url = '/control/event/%s/%s/settings/payment/%s' % (ORG, both.event.slug, v.identifier)
        r = admin.get(url)
        assert r.status_code == 200
        html = r.content.decode()
        form = FormReader(html)
        provider_fields = {n for n in form.names if n.startswith('payment_')}
        assert v.setting_key('api_key') in provider_fields
        assert not any(n.startswith(other.settings_prefix) for n in provider_fields), provider_fields
        assert v.path() in html, 'settings page does not show its own webhook URL'
        assert other.path() not in html
    with scopes_disabled():
        both.event.settings.flush()
        before_a = {k: v for k, v in both.event.settings.freeze().items() if k.startswith(A.settings_prefix)}
    url = '/control/event/%s/%s/settings/payment/%s' % (ORG, both.event.slug, B.identifier)
    r = admin.post(url, FormReader(admin.get(url).content.decode()).data(**{
        B.setting_key('app_id'): 'app-live-b-renamed', B.setting_key('webhook_secret'): 'whsec_B_ROTATED'}))
    assert r.status_code == 302, r.status_code
    with scopes_disabled():
        both.event.settings.flush()
        stored = both.event.settings.freeze()
    assert stored[B.setting_key('app_id')] == 'app-live-b-renamed'
    assert {k: v for k, v in stored.items() if k.startswith(A.settings_prefix)} == before_a


@pytest.mark.django_db
def test_customer_sees_both_payment_methods_on_one_event(both):
    customer = VariantCustomer(both.shop, A)
    customer.add_to_cart()
    customer.questions()
    page = customer.client.get(customer.url('/checkout/payment/')).content.decode()
    for v in VARIANTS:
        assert 'value="%s"' % v.identifier in page, v
        assert escape(v.plugin('texts').PUBLIC_NAME) in page, v
    # Disabling one leaves the other offered.
    with scopes_disabled():
        both.event.disable_plugin(A.module)
        both.event.save()
    page = customer.client.get(customer.url('/checkout/payment/')).content.decode()
    assert 'value="%s"' % A.identifier not in page and 'value="%s"' % B.identifier in page


# -- URLs, templates, static files ----------------------------------------------------------------------


@pytest.mark.django_db
def test_url_prefixes_and_webhook_paths_are_distinct(both):
    from django.test import Client
    from django.urls import resolve
    from pretix.multidomain.urlreverse import eventreverse
    seen = set()
    for v in VARIANTS:
        for what in ('webhook', 'status'):
            path = eventreverse(both.event, 'plugins:%s:%s' % (v.module, what))
            assert path == v.path(what), (v, what, path)
            # pretix wraps plugin views in its event-detection closure, so the namespace identifies the app.
            match = resolve(path)
            assert (match.namespace, match.url_name) == ('plugins:' + v.module, what), (path, match)
            seen.add(path)
    assert len(seen) == 4
    # Both endpoints answer on the one event (a GET is refused by the view itself, not a 404).
    for v in VARIANTS:
        assert Client().get(v.path()).status_code == 405, v


def _package_dir(variant):
    return os.path.dirname(os.path.realpath(variant.plugin().__file__))


def test_templates_and_static_files_resolve_to_each_packages_own_files():
    from django.contrib.staticfiles import finders
    from django.template.loader import get_template
    for v in VARIANTS:
        root = _package_dir(v)
        template_dir = os.path.join(root, 'templates', v.module)
        names = sorted(os.listdir(template_dir))
        assert 'checkout_payment_confirm.html' in names and 'settings.html' in names, names
        for name in names:
            origin = os.path.realpath(get_template('%s/%s' % (v.module, name)).origin.name)
            assert origin == os.path.join(template_dir, name), (v, name, origin)
        static_dir = os.path.join(root, 'static', v.module)
        statics = sorted(os.listdir(static_dir))
        assert 'checkout.js' in statics and 'checkout.css' in statics, statics
        for name in statics:
            found = finders.find('%s/%s' % (v.module, name))
            assert found and os.path.realpath(found) == os.path.join(static_dir, name), (v, name, found)


# -- migrations ---------------------------------------------------------------------------------------------


# Runs in a separate interpreter against a fresh sqlite database, for two reasons: pretix's test settings
# create tables without migrations (unless GITHUB_WORKFLOW is set, as here), and pretix's makemigrations
# monkeypatches Django once per process (a second call in the pytest process, after test_setup.py's, raises).
# pretixbase up to the plugins' dependency is recorded as applied without running it (a full pretix migrate
# takes ~3 minutes on sqlite); the plugins' own migrations run for real, one variant after the other.
_MIGRATE = r'''
import io, json, sys
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.core.management.commands.makemigrations import Command as DjangoMakemigrations
modules = sys.argv[1:]


def missing_migrations(command):
    out = io.StringIO()
    try:
        call_command(command, *modules, check=True, dry_run=True, verbosity=1, stdout=out)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        return 'exit %s: %s' % (exc.code, out.getvalue())
    return None


# Django's own command first: pretix's (second) patches Django to ignore some field attributes, blank
# among them, for the rest of the process.
result = {'django_makemigrations_missing': missing_migrations(DjangoMakemigrations()),
          'makemigrations_missing': missing_migrations('makemigrations')}
executor = MigrationExecutor(connection)
executor.migrate([('pretixbase', '0246_bigint')], fake=True)
for module in modules:
    executor.loader.build_graph()
    before = set(connection.introspection.table_names())
    executor.migrate(executor.loader.graph.leaf_nodes(module))
    result[module] = {
        'shipped': sorted(name for app, name in executor.loader.disk_migrations if app == module),
        'tables': sorted(set(connection.introspection.table_names()) - before),
        'applied': sorted(name for app, name in executor.recorder.applied_migrations() if app == module),
    }
print(json.dumps(result))
'''


@pytest.fixture(scope='module')
def migration_report(tmp_path_factory):
    if missing_configuration():
        pytest.skip('no second variant')  # the autouse fixture reports why (and fails when required)
    data_dir = tmp_path_factory.mktemp('side-by-side-migrate')
    env = dict(os.environ, DATA_DIR=str(data_dir), GITHUB_WORKFLOW='realpretix-side-by-side',
               DJANGO_SETTINGS_MODULE='pretix.testutils.settings')
    # Never migrate a database configured for something else: this check always runs on its own
    # sqlite file, also when the suite itself runs on PostgreSQL (PRETIX_DATABASE_*).
    env.pop('PRETIX_CONFIG_FILE', None)
    for key in [k for k in env if k.startswith('PRETIX_DATABASE_')]:
        del env[key]
    proc = subprocess.run([sys.executable, '-c', _MIGRATE, A.module, B.module], env=env, cwd=str(data_dir),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_makemigrations_check_finds_nothing_missing_for_either(migration_report):
    assert migration_report['makemigrations_missing'] is None, migration_report['makemigrations_missing']
    for v in VARIANTS:
        assert migration_report[v.module]['shipped'], 'no migrations shipped for %s' % v.module


def test_migrations_equal_the_models_for_djangos_own_makemigrations(migration_report):
    """Every field attribute, blank included: Django's makemigrations (unlike pretix's, which ignores
    some of them) finds nothing to migrate either."""
    assert migration_report['django_makemigrations_missing'] is None, migration_report['django_makemigrations_missing']


def test_both_apps_migrations_apply_and_create_distinct_tables(migration_report):
    from django.apps import apps
    tables = {}
    for v in VARIANTS:
        got = migration_report[v.module]
        assert got['applied'] == got['shipped'], (v, got)
        assert got['tables'], '%s migrations created no tables' % v.module
        assert all(t.startswith(v.module + '_') for t in got['tables']), (v, got['tables'])
        tables[v.module] = set(got['tables'])
        expected = {m._meta.db_table for m in apps.get_app_config(v.module).get_models()}
        assert tables[v.module] == expected, (v, tables[v.module], expected)
    assert not tables[A.module] & tables[B.module]


# -- paying with each, webhooks -------------------------------------------------------------------------------


def _snapshot(order, payment):
    with scopes_disabled():
        order.refresh_from_db()
        payment.refresh_from_db()
        return (order.status, payment.state, json.dumps(payment.info_data, sort_keys=True),
                order.all_logentries().count())


def _processed(variant):
    with scopes_disabled():
        return sorted(variant.models()[1].objects.values_list('event_id', flat=True))


def _resend(delivery, url):
    """POST the exact bytes and headers of an earlier delivery to another URL (a misrouted delivery)."""
    from realpretix import DjangoClientSender
    return DjangoClientSender()(url, delivery.request_headers, delivery.request_body)[0]


@pytest.fixture
def two_pending(both, sim, sim_b):
    """A customer who paid with variant A and one with variant B, both orders waiting for the webhook."""
    a = VariantCustomer(both.shop, A).pending_order()
    b = VariantCustomer(both.shop, B).pending_order()
    # Each checkout went to its own variant's NodeRails, with its own credentials.
    assert a[2] in sim.sessions and a[2] not in sim_b.sessions
    assert b[2] in sim_b.sessions and b[2] not in sim.sessions
    assert sim.session(a[2])['appId'] == A.live.app_id and sim_b.session(b[2])['appId'] == B.live.app_id
    # B runs in the currency it was rendered for, no organiser override needed.
    with scopes_disabled():
        assert both.event.settings.get(B.setting_key('currency')) is None
    assert sim_b.session(b[2])['currency'] == sim.session(a[2])['currency'] == B.currency == both.event.currency
    return {A.module: a, B.module: b}


@pytest.mark.django_db
def test_checkout_with_each_variant_uses_its_own_service_page_and_session_state(both, sim, sim_b):
    from django.templatetags.static import static
    for v, own_sim, other_sim in ((A, sim, sim_b), (B, sim_b, sim)):
        customer = VariantCustomer(both.shop, v)
        other = B if v is A else A
        other_sim.clear_requests()
        customer.to_confirm()
        sid = customer.state['session_id']
        assert sid in own_sim.sessions and not other_sim.requests_for('create_session'), v
        html = customer.confirm_page().content.decode()
        assert '%s/checkout/%s' % (own_sim.ui_url, sid) in html
        assert static('%s/checkout.js' % v.module) in html and static('%s/checkout.css' % v.module) in html
        assert static('%s/checkout.js' % other.module) not in html
        assert v.path('status') in html
        # The checkout state is namespaced per module: the other variant's status endpoint knows nothing of it.
        assert customer.client.get(v.path('status')).status_code == 200
        r = customer.client.get(other.path('status'))
        assert r.status_code == 404 and json.loads(r.content)['status'] == 'NO_SESSION', other
        assert customer.client.session.get(other.plugin('payment').SESSION_KEY) is None


@pytest.mark.django_db
def test_each_webhook_confirms_only_its_own_payment(two_pending, sim, sim_b):
    order_a, pay_a, sid_a = two_pending[A.module]
    order_b, pay_b, sid_b = two_pending[B.module]
    before_b = _snapshot(order_b, pay_b)

    [to_a] = sim.deliver('payment.captured', sid_a)
    assert to_a.status == 200, to_a.response_body
    assert _snapshot(order_a, pay_a)[:2] == ('p', 'confirmed')
    assert _snapshot(order_b, pay_b) == before_b
    assert _processed(A) == [to_a.event_id] and _processed(B) == []

    # The very same delivery (A's signature) misrouted to B's URL: refused, B unchanged.
    before_a = _snapshot(order_a, pay_a)
    status = _resend(to_a, B.webhook_url)
    assert status == 400, status   # a forgery to B: NodeRails must not redeliver it
    assert _snapshot(order_b, pay_b) == before_b and _snapshot(order_a, pay_a) == before_a
    assert _processed(B) == []

    [to_b] = sim_b.deliver('payment.captured', sid_b)
    assert to_b.status == 200, to_b.response_body
    assert _snapshot(order_b, pay_b)[:2] == ('p', 'confirmed')
    assert _snapshot(order_a, pay_a) == before_a
    assert _processed(B) == [to_b.event_id] and _processed(A) == [to_a.event_id]
    with scopes_disabled():
        assert pay_a.info_data['payment_intent_id'] == sim.session(sid_a)['paymentIntentId']
        assert pay_b.info_data['payment_intent_id'] == sim_b.session(sid_b)['paymentIntentId']


@pytest.mark.django_db
def test_delivery_signed_for_one_variant_is_refused_by_the_other(two_pending, sim, sim_b):
    """Secrets differ per variant, so a genuine delivery for B (B's secret, B's session) fails A's signature
    check and the reverse; live and test secrets alike."""
    snapshots = {m: _snapshot(*two_pending[m][:2]) for m in two_pending}
    for own, own_sim, other in ((A, sim, B), (B, sim_b, A)):
        sid = two_pending[own.module][2]
        for secret in (own.live.secret, own.test.secret):
            [d] = own_sim.deliver('payment.captured', sid, url=other.webhook_url, secret=secret, apply_state=False)
            assert (d.status, d.response_body) == (400, b'Invalid signature'), (own, other, d.status, d.response_body)
    assert {m: _snapshot(*two_pending[m][:2]) for m in two_pending} == snapshots
    assert _processed(A) == [] and _processed(B) == []


@pytest.mark.django_db
def test_valid_signature_for_the_other_variant_with_a_foreign_session_is_ignored(two_pending, sim, sim_b):
    """A capture of A's session, correctly signed with B's secret and delivered to B: B authenticates it but
    must find no payment of its own, so A's payment stays pending (and B's too). The reverse likewise."""
    snapshots = {m: _snapshot(*two_pending[m][:2]) for m in two_pending}
    documents = {}
    for owner, owner_sim, receiver in ((A, sim, B), (B, sim_b, A)):
        sid = two_pending[owner.module][2]
        documents[owner.module] = owner_sim.build_event('payment.captured', sid)
        [d] = owner_sim.deliver('payment.captured', sid, document=documents[owner.module],
                                url=receiver.webhook_url, secret=receiver.live.secret)
        assert d.status == 200, (owner, receiver, d.status, d.response_body)  # authentic, just not its payment
        assert b'ignored' in d.response_body.lower(), d.response_body
        assert {m: _snapshot(*two_pending[m][:2]) for m in two_pending} == snapshots
    assert _processed(A) == [] and _processed(B) == []
    with scopes_disabled():
        # Nothing of the foreign session was linked to the receiver's references either.
        for v in VARIANTS:
            refs = set(v.models()[0].objects.values_list('reference', flat=True))
            assert two_pending[v.module][2] in refs
            other = B if v is A else A
            assert two_pending[other.module][2] not in refs

    # The same documents delivered to their own variant are genuine captures: each confirms its payment only.
    for owner, owner_sim in ((A, sim), (B, sim_b)):
        sid = two_pending[owner.module][2]
        owner_sim.mark_paid(sid)
        [d] = owner_sim.deliver('payment.captured', sid, document=documents[owner.module])
        assert d.status == 200, d.response_body
        assert _snapshot(*two_pending[owner.module][:2])[:2] == ('p', 'confirmed')
    assert _processed(A) == [documents[A.module]['id']] and _processed(B) == [documents[B.module]['id']]


@pytest.mark.django_db
def test_reconciliation_settles_each_variants_payments_through_its_own_service(two_pending, sim, sim_b):
    """Each variant's periodic task asks only its own NodeRails, and only about its own payments."""
    sid_a, sid_b = two_pending[A.module][2], two_pending[B.module][2]
    sim.mark_paid(sid_a)  # A paid, B's session still open
    age_for_reconciliation(*[two_pending[v.module][1] for v in VARIANTS])
    sim.clear_requests()
    sim_b.clear_requests()
    run_periodic_tasks(A.module, B.module)
    assert _snapshot(*two_pending[A.module][:2])[:2] == ('p', 'confirmed')
    assert _snapshot(*two_pending[B.module][:2])[:2] == ('n', 'pending')
    asked_a = [r.path for r in sim.requests_for('get_session')]
    asked_b = [r.path for r in sim_b.requests_for('get_session')]
    assert asked_a and all(p.endswith('/' + sid_a) for p in asked_a), asked_a
    assert asked_b and all(p.endswith('/' + sid_b) for p in asked_b), asked_b
    sim_b.mark_paid(sid_b)
    run_periodic_tasks(A.module, B.module)
    # B confirms on the capture only (confirm_on = ["captured"]), and a PAID public session may be the
    # customer's approval alone (docs/noderails-contract.md): the reconciliation leaves it to the capture.
    assert _snapshot(*two_pending[B.module][:2])[:2] == ('n', 'pending')
    [d] = sim_b.deliver('payment.captured', sid_b)
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    assert _snapshot(*two_pending[B.module][:2])[:2] == ('p', 'confirmed')


# -- [webhook] confirm_on differs between the variants ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize('approval', ['payment.authorized', 'payment_intent.authorized', 'checkout_session.completed'])
def test_variant_confirming_on_capture_only_logs_the_approval(two_pending, sim, sim_b, approval):
    """Examples/acme-tickets.toml has confirm_on = ["captured"]: the customer's approval is put on the order's
    log, only the capture confirms. The stock variant on the same event confirms on the approval."""
    assert B.plugin('conf').CONFIRM_ON == ('captured',) and A.plugin('conf').CONFIRM_ON == ('authorized', 'captured')
    order, payment, sid = two_pending[B.module]
    [d] = sim_b.deliver(approval, sid)
    assert d.status == 200 and b'waiting for the capture' in d.response_body, d.response_body
    assert _snapshot(order, payment)[:2] == ('n', 'pending')
    with scopes_disabled():
        logged = [e.parsed_data.get('type') for e in order.all_logentries().filter(
            action_type=B.plugin('settlement').LOG_ACTION)]
    assert approval in logged
    [d] = sim_b.deliver('payment.captured', sid, apply_state=False)
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    assert _snapshot(order, payment)[:2] == ('p', 'confirmed')

    order_a, payment_a, sid_a = two_pending[A.module]
    [d] = sim.deliver(approval, sid_a)
    assert d.status == 200 and b'Payment confirmed' in d.response_body, d.response_body
    assert _snapshot(order_a, payment_a)[:2] == ('p', 'confirmed')
