"""Interrupted while it starts (Ctrl-C, or SIGTERM from with_postgres.py or CI), the cluster stops
every process it launched and removes its folder and its database."""

import json
import os
import signal
import subprocess
import sys

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))


def processes_of(root):
    """pids of processes whose environment names this cluster's folder (servers and their children)."""
    marker = ('FORGE_CLUSTER=%s' % root).encode()
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/environ' % pid, 'rb') as f:
                if marker in f.read().split(b'\0'):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def database_exists(name):
    conn = harness.connect(type('S', (), {'db': type('D', (), dict(
        name='postgres', host=os.environ.get('FORGE_PG_HOST', '127.0.0.1'), port=int(os.environ['FORGE_PG_PORT']),
        user=os.environ.get('FORGE_PG_USER', 'postgres')))}))
    try:
        with conn.cursor() as cursor:
            cursor.execute('SELECT 1 FROM pg_database WHERE datname = %s', [name])
            return cursor.fetchone() is not None
    finally:
        conn.close()


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_interrupted_cluster_leaves_nothing_behind(sig):
    database = 'forge_cluster_hold_%d' % sig
    holder = subprocess.Popen([sys.executable, os.path.join(HERE, 'cluster.py'), 'hold'], stdout=subprocess.PIPE,
                              env=dict(os.environ, CLUSTER_DATABASE=database))
    try:
        launched = json.loads(holder.stdout.readline())  # redis, celery and gunicorn started, pretix loading
        root = launched['folder']
        assert os.path.isdir(root) and processes_of(root) and database_exists(database)
        holder.send_signal(sig)
        assert holder.wait(timeout=60) in (0, 128 + sig, -sig)
        assert processes_of(root) == []
        assert not os.path.exists(root)
        assert not database_exists(database)
    finally:
        if holder.poll() is None:
            holder.kill()
