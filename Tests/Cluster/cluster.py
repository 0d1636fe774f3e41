"""pretix as its deployment guide runs it, on 127.0.0.1 only: PostgreSQL, redis (cache, sessions,
celery broker and result backend), gunicorn with several workers, two celery workers, the periodic
tasks by `runperiodic`, and the NodeRails simulator delivering webhooks to gunicorn.

    cluster = Cluster()
    cluster.start()        # harness.Stack's database, shop and simulator, then redis, celery, gunicorn
    cluster.runperiodic()  # pretix's cron entry, in a process of its own
    cluster.restart_redis(); cluster.kill_celery(0); cluster.start_celery(0)
    cluster.stop()         # every process stopped, every folder removed (also on failure)

It is harness.Stack (Tests/Production) with other servers: the test process is still a Django
process on the same database and the same redis, so tests can look at pretix's books directly.
`python cluster.py hold` starts one and prints its processes and folders, for the interrupt test.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'Production'))

import harness  # noqa: E402

GUNICORN_WORKERS = 3
CELERY_WORKERS = 2
# redis databases: pretix's cache and sessions, celery's broker, celery's results.
REDIS_CACHE, REDIS_BROKER, REDIS_RESULTS = 0, 1, 2
# What the access log records per request: the gunicorn worker's pid, to show requests were spread.
ACCESS_FORMAT = '%(p)s %(s)s "%(r)s"'
PERIODIC_TASK = harness.MODULE + '.signals.reconcile_pending_payments'


class Process:
    """A server process of the cluster, logging to a file in the cluster's folder."""

    def __init__(self, name, command, env, root):
        self.name, self.command, self.env, self.root = name, command, env, root
        self.log_path = os.path.join(root, name + '.log')
        self.process = None

    def start(self):
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.root, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL: an OOM kill or a deploy that does not wait."""
        if self.alive():
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, grace=5):
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self, size=6000):
        text = b''
        for path in (self.log_path, self.log_path.replace('.log', '.tasks.log')):
            try:
                with open(path, 'rb') as f:
                    text += f.read()[-size:]
            except OSError:
                pass
        return text.decode('utf-8', 'replace')


def wait_for_port(port, process, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError('%s exited:\n%s' % (process.name, process.log()))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('%s does not accept connections on %d:\n%s' % (process.name, port, process.log()))


class Cluster(harness.Stack):
    def __init__(self, database='forge_cluster'):
        super().__init__(workers=0, database=database)
        self.redis = self.gunicorn = None
        self.celery = []
        self.redis_port = harness.free_port()
        self.web_port = harness.free_port()

    # -- configuration: pretix.cfg as its installation guide writes it -------------------------

    def _extra_config(self):
        redis = 'redis://127.0.0.1:%d/%%d' % self.redis_port
        return [
            '[redis]', 'location=' + redis % REDIS_CACHE, 'sessions=true',
            '[celery]', 'broker=' + redis % REDIS_BROKER, 'backend=' + redis % REDIS_RESULTS,
        ]

    def _configure(self):
        env = super()._configure()
        values = {'DJANGO_SETTINGS_MODULE': 'cluster_settings', 'FORGE_CLUSTER': self.root,
                  'PYTHONPATH': os.pathsep.join([HERE, env['PYTHONPATH']])}
        os.environ.update(values)
        env.update(values)
        return env

    # -- servers -------------------------------------------------------------------------------

    def _start(self):
        """redis first (migrate and the shop's settings already go through pretix's cache); the servers
        import pretix while this process migrates and builds the shop: on 2 busy cores that overlap
        is most of the start-up time."""
        self.root = tempfile.mkdtemp(prefix='forge-cluster-')
        self.start_redis()
        self.db.start()
        self.env = self._configure()
        self.celery = [self._celery(i).start() for i in range(CELERY_WORKERS)]
        # --preload: pretix is imported once and the workers are forked from it.
        self.gunicorn = Process('gunicorn', [
            sys.executable, '-m', 'gunicorn', 'pretix.wsgi', '--workers', str(GUNICORN_WORKERS), '--preload',
            '--bind', '127.0.0.1:%d' % self.web_port, '--access-logfile', os.path.join(self.root, 'access.log'),
            '--access-logformat', ACCESS_FORMAT, '--timeout', '60', '--graceful-timeout', '3', '--no-control-socket',
        ], self.env, self.root).start()
        self.launched()
        import django
        django.setup()
        from django.core.management import call_command

        # --run-syncdb: production_settings.py creates the tables from the models (see there).
        call_command('migrate', run_syncdb=True, interactive=False, verbosity=0)
        self.sim = self._simulator()
        self.shop = harness._production_shop(self.sim)
        self.sim.configure(webhook_url=self.webhook_url)
        wait_for_port(self.web_port, self.gunicorn)
        for worker in self.celery:
            self.wait_celery(worker)
        self._warm_up()

    def launched(self):
        """Called once every server process is started (cluster.py hold reports them)."""

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.web_port

    @property
    def webhook_url(self):
        return self.url + harness.WEBHOOK_PATH

    def _warm_up(self):
        """A few requests, so that each gunicorn worker has loaded pretix's URLs and the plugin."""
        import urllib.error
        import urllib.request
        for _ in range(GUNICORN_WORKERS * 2):
            request = urllib.request.Request(self.webhook_url, data=b'{}', method='POST',
                                             headers={'Content-Type': 'application/json', 'Connection': 'close'})
            try:
                urllib.request.urlopen(request, timeout=60).close()
            except urllib.error.HTTPError as exc:
                exc.close()  # 400 Invalid signature: only the warm-up matters

    def start_redis(self):
        folder = os.path.join(self.root, 'redis')
        os.makedirs(folder, exist_ok=True)
        # No persistence: a restart loses the cache, the sessions and the broker's queues.
        self.redis = Process('redis', [
            shutil.which('redis-server') or 'redis-server', '--bind', '127.0.0.1', '--port', str(self.redis_port),
            '--dir', folder, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes',
        ], dict(os.environ, FORGE_CLUSTER=self.root), self.root).start()
        wait_for_port(self.redis_port, self.redis)

    def restart_redis(self, down_seconds=0.0):
        self.redis.kill()
        time.sleep(down_seconds)
        self.start_redis()

    def _celery(self, index):
        # --pool solo: the worker is one process, so SIGKILL kills the task it runs and nothing else.
        return Process('celery-%d' % index, [
            sys.executable, '-m', 'celery', '-A', 'pretix.celery_app', 'worker', '--pool', 'solo',
            '--loglevel', 'INFO', '--hostname', 'forge%d@127.0.0.1' % index, '--without-gossip',
            '--without-mingle', '--without-heartbeat',
            # Its own log file, written record by record: the log tells which worker runs a task.
            '--logfile', os.path.join(self.root, 'celery-%d.tasks.log' % index),
        ], dict(self.env, PYTHONUNBUFFERED='1'), self.root)

    def wait_celery(self, worker, timeout=120):
        deadline = time.monotonic() + timeout
        while ' ready.' not in worker.log(200000):
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError('%s did not start:\n%s' % (worker.name, worker.log()))
            time.sleep(0.1)
        return worker

    def start_celery(self, index):
        self.celery[index] = self.wait_celery(self._celery(index).start())
        return self.celery[index]

    def kill_celery(self, index):
        self.celery[index].kill()

    def celery_log(self):
        return ''.join(worker.log(200000) for worker in self.celery)

    def runperiodic(self, http_timeout=None):
        """pretix's cron entry for the plugin's task in a process of its own (periodic.py), loaded and
        waiting: its .stdin.write(b'\\n') starts the run, .communicate() collects the output."""
        process = subprocess.Popen([sys.executable, os.path.join(HERE, 'periodic.py')]
                                   + ([str(http_timeout)] if http_timeout else []),
                                   env=self.env, cwd=self.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        if process.stdout.readline().strip() != b'ready':
            process.wait(timeout=30)
            raise RuntimeError('runperiodic did not start')
        return process

    def forget_periodic_runs(self):
        """Clear minimum_interval's memory of the task's last run (in redis), as on a fresh deployment."""
        from django.core.cache import cache
        cache.delete_many(['pretix_periodic_%s_%s' % (PERIODIC_TASK, state) for state in ('running', 'result')])

    def gunicorn_workers(self):
        """pids of gunicorn's worker processes now (the master's children)."""
        return sorted(_children(self.gunicorn.pid))

    def serving_workers(self):
        """pids of the gunicorn workers answering a request now: each holds the connection it accepted
        (a sync worker answers one request per connection; between requests it holds none)."""
        accepted = _established_inodes(self.web_port)
        return [pid for pid in self.gunicorn_workers() if _socket_inodes(pid) & accepted]

    def access_log(self):
        try:
            with open(os.path.join(self.root, 'access.log')) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def logs(self, size=4000):
        """The tail of every server's log and of pretix's own, for a failed test's report."""
        parts = [(p.name, p.log(size)) for p in self.processes()]
        pretix_log = os.path.join(self.root or '', 'data', 'logs', 'pretix.log')
        if os.path.exists(pretix_log):
            with open(pretix_log, 'rb') as f:
                parts.append(('pretix.log', f.read()[-size:].decode('utf-8', 'replace')))
        return '\n'.join('--- %s\n%s' % part for part in parts)

    def processes(self):
        return [p for p in [self.gunicorn, self.redis, *self.celery] if p is not None]

    def stop(self):
        for process in [self.gunicorn, *self.celery]:
            if process is not None and process.alive():
                process.process.terminate()  # all at once; then each is waited for
        for process in [self.gunicorn, *self.celery, self.redis]:
            if process is not None:
                try:
                    process.stop()
                except Exception:
                    pass
        self.gunicorn, self.celery = None, []
        super().stop()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _children(pid):
    pids = set()
    try:
        for task in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/children' % (pid, task)) as f:
                pids.update(int(child) for child in f.read().split())
    except OSError:
        pass  # the process or one of its threads ended meanwhile
    return pids


def _established_inodes(port):
    """Socket inodes of the established TCP connections whose local end is on ``port`` (the server's
    side of the connections it accepted), from /proc/net/tcp (the cluster binds IPv4 127.0.0.1)."""
    inodes = set()
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(':%04X' % port) and fields[3] == '01':  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid):
    inodes = set()
    folder = '/proc/%d/fd' % pid
    try:
        names = os.listdir(folder)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(os.path.join(folder, name))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    return inodes


def hold():
    """Start a cluster, say where it lives as soon as its servers are launched, then wait to be
    interrupted (test_cleanup.py)."""
    def terminate(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)
    cluster = Cluster(database=os.environ.get('CLUSTER_DATABASE', 'forge_cluster_hold'))
    cluster.launched = lambda: print(json.dumps({'folder': cluster.root}), flush=True)
    try:
        cluster.start()
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == '__main__':
    if sys.argv[1:] != ['hold']:
        sys.exit('usage: cluster.py hold')
    hold()
