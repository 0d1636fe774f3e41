"""A production-shaped pretix for the NodeRails plugin: PostgreSQL, several web worker processes
and the NodeRails simulator, all on 127.0.0.1 and all stopped again by Stack.stop().

    stack = Stack(workers=3)
    stack.start()          # database, pretix config, migrate, shop, simulator, workers
    order, payment, sid = stack.pending_order()
    ...
    stack.stop()

The database is the cluster started by with_postgres.py (FORGE_PG_HOST/PORT/USER in the
environment) or, when run alone, a ThrowawayPostgres of our own. The test process itself is a
Django process on the same database (django.setup() in Stack.start), so tests can call the
plugin directly (execute_payment, execute_refund, the periodic task) while the workers answer
webhooks over HTTP. Used by the production suite (conftest.py) and scripts/bench_webhooks.py.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _path in (os.path.join(ROOT, 'Tests', 'Support'), os.path.join(ROOT, 'Simulator'), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pretix_testkit  # noqa: E402
from pretix_testkit import LIVE, ORG, PRICE, configure_provider, create_shop, wait_until  # noqa: E402,F401
from throwaway_postgres import ThrowawayPostgres  # noqa: E402

MODULE = os.environ.get('REALPRETIX_MODULE', 'pretix_noderails')
IDENTIFIER = os.environ.get('REALPRETIX_PROVIDER', 'noderails')
WEBHOOK_SEGMENT = os.environ.get('REALPRETIX_WEBHOOK_PATH', 'noderails')
EVENT = 'prod'
WEBHOOK_PATH = '/%s/%s/%s/webhook/' % (ORG, EVENT, WEBHOOK_SEGMENT)
CONFIRMED_ACTION = 'pretix.event.order.payment.confirmed'
PAID_ACTION = 'pretix.event.order.paid'


def connect(stack):
    """A psycopg2 connection of our own to the stack's database (to hold locks or look at them)."""
    import psycopg2
    return psycopg2.connect(dbname=stack.db.name, host=stack.db.host, port=stack.db.port, user=stack.db.user)


def lock_waiters(stack):
    """Backends of the stack's database waiting for a row or transaction lock."""
    conn = connect(stack)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                           [stack.db.name])
            return cursor.fetchone()[0]
    finally:
        conn.close()


def hold_payment_lock(stack, payment):
    """Another transaction (a long pretix operation, a stuck worker) holding the payment row;
    rollback() the returned connection to let go."""
    conn = connect(stack)
    with conn.cursor() as cursor:
        cursor.execute('SELECT id FROM pretixbase_orderpayment WHERE id = %s FOR UPDATE', [payment.pk])
    return conn


def open_transactions(stack):
    """Backends of the stack's database inside a transaction, other than the one asking."""
    conn = connect(stack)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND xact_start IS NOT NULL '
                           'AND pid <> pg_backend_pid()', [stack.db.name])
            return cursor.fetchone()[0]
    finally:
        conn.close()


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Database:
    """A fresh PostgreSQL database on the shared cluster, or on a throwaway cluster of our own."""

    def __init__(self, name):
        self.name = name
        self.own = None

    def start(self):
        if os.environ.get('FORGE_PG_PORT'):
            self.host = os.environ.get('FORGE_PG_HOST', '127.0.0.1')
            self.port = int(os.environ['FORGE_PG_PORT'])
            self.user = os.environ.get('FORGE_PG_USER', 'postgres')
        else:
            self.own = ThrowawayPostgres().__enter__()
            self.host, self.port, self.user = '127.0.0.1', self.own.port, self.own.user
        self._admin('DROP DATABASE IF EXISTS "%s"' % self.name, 'CREATE DATABASE "%s"' % self.name)

    def _admin(self, *statements):
        import psycopg2
        conn = psycopg2.connect(dbname='postgres', host=self.host, port=self.port, user=self.user)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def environment(self):
        """pretix reads PRETIX_<SECTION>_<KEY> before its config file."""
        return {
            'PRETIX_DATABASE_BACKEND': 'postgresql', 'PRETIX_DATABASE_NAME': self.name,
            'PRETIX_DATABASE_USER': self.user, 'PRETIX_DATABASE_PASSWORD': '',
            'PRETIX_DATABASE_HOST': self.host, 'PRETIX_DATABASE_PORT': str(self.port),
        }

    def stop(self):
        if self.own is not None:
            self.own.__exit__(None, None, None)
            self.own = None
        else:
            try:
                from django.db import connections
                connections.close_all()
            except Exception:
                pass  # interrupted before Django was set up: no connection of ours to close
            try:
                self._admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
            except Exception:
                pass  # the cluster goes away with with_postgres.py anyway


class Worker:
    """One pretix web worker process (serve.py) on its own port."""

    def __init__(self, env, log_dir, index):
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.log_path = os.path.join(log_dir, 'worker-%d.log' % index)
        self.log = open(self.log_path, 'wb')
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, 'serve.py'), str(self.port)],
                                        env=env, stdout=subprocess.PIPE, stderr=self.log)

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()  # "ready", or '' when it died
        if line.strip() != b'ready':
            raise RuntimeError('pretix worker on port %d did not start:\n%s' % (self.port, self.log_tail()))
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError('pretix worker on port %d does not accept connections' % self.port)
        self._warm_up(deadline - time.monotonic())
        return self

    def _warm_up(self, timeout):
        """One request through pretix's URL resolution, middleware and the plugin's view module, so
        the first timed delivery does not pay for a cold worker (seconds on a busy machine)."""
        request = urllib.request.Request(self.webhook_url, data=b'{}', method='POST',
                                         headers={'Content-Type': 'application/json'})
        try:
            urllib.request.urlopen(request, timeout=max(timeout, 1)).close()
        except urllib.error.HTTPError as exc:
            exc.close()  # 400 Invalid signature: the answer does not matter, the warm-up does

    @property
    def webhook_url(self):
        return self.url + WEBHOOK_PATH

    def kill(self):
        """SIGKILL: the worker dies mid-request, like an OOM kill or a pulled plug."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process.stdout.close()
        self.log.close()

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()[-size:].decode('utf-8', 'replace')
        except OSError:
            return ''


class Stack:
    def __init__(self, workers=3, database='forge_production'):
        self.worker_count = workers
        self.db = Database(database)
        self.workers = []
        self.sim = None
        self.root = None
        self.env = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        self.root = self.root or tempfile.mkdtemp(prefix='forge-prod-')
        self.db.start()
        self.env = self._configure()
        # --run-syncdb: production_settings.py creates the tables from the models (see there).
        subprocess.run([sys.executable, '-m', 'pretix', 'migrate', '--run-syncdb', '--noinput', '-v', '0'],
                       env=self.env, check=True, cwd=self.root)
        import django
        django.setup()
        self.sim = self._simulator()
        self.shop = _production_shop(self.sim)
        # Servers start after the provider is configured: each reads the settings on its own.
        self.sim.configure(webhook_url=self._start_servers())

    def _start_servers(self):
        """Start the web workers; the webhook URL NodeRails delivers to. (Tests/Cluster overrides it.)"""
        self.workers = [Worker(self.env, self.root, i) for i in range(self.worker_count)]
        for worker in self.workers:
            worker.wait_ready()
        return self.workers[0].webhook_url

    def _configure(self):
        data = os.path.join(self.root, 'data')
        os.makedirs(data)
        config = os.path.join(self.root, 'pretix.cfg')
        with open(config, 'w') as f:
            f.write('\n'.join([
                '[pretix]', 'instance_name=pretix-forge production tests', 'url=http://127.0.0.1',
                'datadir=%s' % data, 'allow_http_to_private_networks=on', 'currency=USD',
                '[locale]', 'default=en', 'timezone=UTC',
                '[django]', 'secret=%s' % secrets.token_hex(32), 'debug=off',
                '[mail]', 'from=tickets@example.org', *self._extra_config(), '',
            ]))
        values = dict(self.db.environment(), PRETIX_CONFIG_FILE=config, DATA_DIR=data,
                      DJANGO_SETTINGS_MODULE='production_settings')
        os.environ.update(values)
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join([HERE] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        return env

    def _extra_config(self):
        """Further pretix.cfg lines (Tests/Cluster adds redis and celery)."""
        return []

    def _simulator(self):
        from noderails_sim import Simulator
        webhook = (pretix_testkit.plugin_constant(MODULE, 'SIGNATURE_PAYLOAD'),
                   pretix_testkit.plugin_constant(MODULE, 'TIMESTAMP_UNIT'))
        sim = Simulator(credentials={LIVE.app_id: LIVE.api_key}, webhook_secret=LIVE.secret, separate_ui=True,
                        webhook_url='http://127.0.0.1:9/unset', signature_scheme=webhook[0],
                        timestamp_unit=webhook[1])
        sim.start()
        return sim

    def stop(self):
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()  # all at once; Worker.stop() then waits for each
        for worker in self.workers:
            try:
                worker.stop()
            except Exception:
                pass
        self.workers = []
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        self.db.stop()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def add_worker(self):
        worker = Worker(self.env, self.root, len(self.workers)).wait_ready()
        self.workers.append(worker)
        return worker

    # -- data --------------------------------------------------------------------------------

    def pending_order(self, state='pending'):
        """An order with one NodeRails payment whose checkout session exists in the simulator and
        is linked to the payment, as execute_payment leaves it when the customer placed the order
        before NodeRails confirmed: (order, payment, session_id)."""
        from django.db import transaction
        from django.utils.timezone import now
        from django_scopes import scopes_disabled
        from pretix.base.models import Order
        session = self.sim.create_session(format(PRICE, 'f'), 'USD', app_id=LIVE.app_id, reference='forge/prod')
        sid = session['sessionId']
        references = _plugin_models().NodeRailsReference
        with scopes_disabled(), transaction.atomic():
            order = Order.objects.create(
                event=self.shop.event, status=Order.STATUS_PENDING, email='buyer@example.org', datetime=now(),
                expires=now() + timedelta(days=3), total=PRICE, sales_channel=self.shop.web, locale='en')
            order.positions.create(item=self.shop.item, price=PRICE)
            order.create_transactions(is_new=True)
            payment = order.payments.create(provider=IDENTIFIER, amount=PRICE, state=state,
                                            info='{"session_id": "%s"}' % sid)
            references.objects.create(reference=sid, order=order, payment=payment)
        return order, payment, sid


def _plugin_models():
    import importlib
    return importlib.import_module(MODULE + '.models')


def _production_shop(sim):
    """The shared shop (unlimited quota: the load benchmark sells hundreds) configured against the simulator."""
    from django_scopes import scopes_disabled
    shop = create_shop(MODULE, event_slug=EVENT, event_name='Forge Production', quota_size=None)
    with scopes_disabled():
        configure_provider(shop.event, IDENTIFIER, sim)
    return shop


def action_count(order, action_type):
    from django_scopes import scopes_disabled
    with scopes_disabled():
        return order.all_logentries().filter(action_type=action_type).count()
