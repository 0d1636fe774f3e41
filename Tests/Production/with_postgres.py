"""Run a command against a throwaway PostgreSQL cluster: with_postgres.py [--database NAME] -- COMMAND...

Starts a cluster (own data directory, own port, 127.0.0.1 only; Tests/Support/throwaway_postgres.py),
creates NAME (default realpretix) and runs COMMAND with pretix pointed at it through
PRETIX_DATABASE_* (which pretix reads before any config file, pretix.testutils.settings
included; pytest-django then creates and drops its own test_NAME next to it). FORGE_PG_HOST /
FORGE_PG_PORT / FORGE_PG_USER let nested tools (the production suite) create databases of their
own on the same cluster. The cluster is stopped and deleted afterwards, also on failure, Ctrl-C
or SIGTERM. Exits with COMMAND's status.
"""

import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'Support'))

from throwaway_postgres import ThrowawayPostgres  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--database', default='realpretix')
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error('no command given')

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)

    with ThrowawayPostgres() as pg:
        pg.create_database(args.database)
        env = dict(os.environ, **pg.pretix_environment(args.database),
                   FORGE_PG_HOST='127.0.0.1', FORGE_PG_PORT=str(pg.port), FORGE_PG_USER=pg.user)
        print('with_postgres: PostgreSQL on 127.0.0.1:%d, database %s' % (pg.port, args.database), flush=True)
        # Its own process group, so that on Ctrl-C / SIGTERM everything it started (pytest, pretix
        # workers) is stopped before the cluster goes away.
        child = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            return child.wait()
        except BaseException:
            _stop_group(child)
            raise


def _stop_group(child):
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
