"""pretix's cron entry in a process of its own, started ahead: python periodic.py [HTTP_TIMEOUT]

Loads pretix (tens of seconds on a busy machine), prints "ready", and on a line from stdin runs
`runperiodic` for the plugin's task, as cron would at that moment; so a test decides when two such
runs overlap. HTTP_TIMEOUT replaces the plugin's rendered NodeRails timeout (as the real-pretix
suite's http_timeout fixture does): a NodeRails call that outlasts the other run is then slow,
not failed.
"""

import sys

import django


def main(argv):
    django.setup()
    from django.core.management import call_command

    import cluster
    import harness
    import pretix_testkit
    if argv:
        pretix_testkit.plugin(harness.MODULE, 'conf').HTTP_TIMEOUT_SECONDS = int(argv[0])
    print('ready', flush=True)
    sys.stdin.readline()
    call_command('runperiodic', tasks=cluster.PERIODIC_TASK, verbosity=2)


if __name__ == '__main__':
    main(sys.argv[1:])
