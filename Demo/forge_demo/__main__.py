"""python -m forge_demo SPEC.json: run the throwaway shop described by SPEC (see pretix-forge's DemoSpec).

Exit status 0 after a stop signal or finished screenshots, 1 with a message on stderr otherwise.
pretix-forge starts this in a process group of its own, with PR_SET_PDEATHSIG = SIGTERM: if
pretix-forge dies without stopping us, we stop our children and delete the throwaway folder.
"""

import importlib
import json
import os
import shutil
import sys
import time

from . import lifecycle
from .lifecycle import DemoError, Stopped


def main(argv):
    with open(argv[1], encoding='utf-8') as f:
        spec = json.load(f)
    lifecycle.stop_on_signals()
    demo = Demo(spec)
    try:
        demo.run()
        return 0
    except Stopped:
        return 0
    except DemoError as exc:
        sys.stderr.write('pretix-forge demo: %s\n' % exc)
        return 1
    finally:
        lifecycle.ignore_further_signals()
        demo.stop()
        if os.getppid() != spec['parent_pid']:
            # pretix-forge is gone, so nobody else will delete the throwaway data.
            shutil.rmtree(spec['workspace'], ignore_errors=True)


def _exit(argv):
    try:
        status = main(argv)
    except Stopped:  # arrived while an error was being reported; the clean-up has run
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: it would wait for the web server's request threads.
    os._exit(status)


class Demo:
    def __init__(self, spec):
        self.spec = spec
        self.simulator = None
        self.server = None
        self.started = time.monotonic()

    def run(self):
        spec = self.spec
        self._configure_environment()
        from . import server
        httpd = server.bind(spec['port'])  # first: a port clash must not wait for the rest
        self.server_url = 'http://%s:%d' % (server.HOST, httpd.server_address[1])
        self._install_plugin()
        import django
        django.setup()
        from . import shop as shops
        self._allow_loopback_only()
        shops.create_tables()
        shop = shops.create_shop(spec)
        from .simulator import SimulatorProcess
        self.simulator = SimulatorProcess(spec['workspace'], self.server_url + shops.webhook_path(spec),
                                          spec['signature_payload'], spec['timestamp_unit']).wait_ready()
        shops.enable_provider(shop, spec, self.simulator)
        self.server = server.Server(httpd).start()
        self.server.warm_up(shop.path)
        if spec.get('screenshots'):
            from . import screenshots
            screenshots.take(spec, self.server, shop, spec['screenshots'])
            return
        self._print_banner(shop)
        while True:
            time.sleep(3600)

    def _configure_environment(self):
        """pretix.cfg and the environment variables pretix reads when its settings are imported."""
        spec = self.spec
        data = os.path.join(spec['workspace'], 'pretix')
        os.makedirs(data, exist_ok=True)
        config = os.path.join(spec['workspace'], 'pretix.cfg')
        with open(config, 'w', encoding='utf-8') as f:
            f.write('\n'.join([
                '[pretix]', 'instance_name=pretix-forge demo', 'url=http://127.0.0.1:%d' % spec['port'],
                'datadir=%s' % data, 'currency=%s' % spec['currency'], 'registration=off',
                '[locale]', 'default=en', 'timezone=UTC',
                '[django]', 'secret=%s' % os.urandom(32).hex(), 'debug=off',
                '[mail]', 'from=demo@example.org', '',
            ]))
        os.environ.update(PRETIX_CONFIG_FILE=config, DJANGO_SETTINGS_MODULE='forge_demo.settings',
                          FORGE_DEMO_COMPRESS_DIR=spec['compress_dir'])

    def _install_plugin(self):
        """pip install --no-deps --target: a folder of the demo's own, so the (shared, cached) pretix
        environment never sees a variant."""
        spec = self.spec
        argv = [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-input', '--disable-pip-version-check',
                '--no-cache-dir', '--target', spec['site'], spec['sdist']]
        if _setuptools_builds_our_sdist():
            argv.insert(4, '--no-build-isolation')  # offline: the environment has what the build needs
        lifecycle.run_logged(argv, os.path.join(spec['workspace'], 'pip.log'), 'installing %s' % spec['sdist'])
        # Only now on sys.path: a folder that did not exist yet when an import looked would stay
        # cached as "nothing here" (sys.path_importer_cache).
        sys.path.insert(0, spec['site'])
        importlib.invalidate_caches()
        self._check_installed_copy_wins()

    def _check_installed_copy_wins(self):
        """The variant pretix loads must be this sdist, not a copy of the same name that the
        interpreter's environment already has (--python): imports and pretix's plugin discovery
        (entry points, first distribution of a name on sys.path) must both find ours."""
        from importlib import metadata, util
        site = os.path.realpath(self.spec['site'])
        package = self.spec['package']
        found = util.find_spec(package['module'])
        origin = os.path.realpath(found.origin) if found and found.origin else None
        try:
            located = os.path.realpath(str(metadata.distribution(package['name']).locate_file('')))
        except metadata.PackageNotFoundError:
            located = None
        if origin is None or not origin.startswith(site + os.sep) or located != site:
            raise DemoError('%s from %s is not the copy Python finds (module at %s, distribution at %s)'
                            % (package['name'], self.spec['sdist'], origin, located))

    def _allow_loopback_only(self):
        """pretix refuses HTTP to private addresses. The simulator is on 127.0.0.1: let exactly
        that through and keep every other private network blocked."""
        from pretix.helpers import monkeypatching
        original = monkeypatching.should_block_access

        def should_block_access(sa):
            if sa[0] == '127.0.0.1':
                return False, None
            return original(sa)
        monkeypatching.should_block_access = should_block_access

    def _print_banner(self, shop):
        import pretix
        spec, sim = self.spec, self.simulator
        package = spec['package']
        lines = [
            '',
            '%s %s in pretix %s, ready in %.0f s. Everything below runs on 127.0.0.1.'
            % (package['name'], package['version'], pretix.__version__, time.monotonic() - self.started),
            '  Shop:           %s%s' % (self.server_url, shop.path),
            '  Backend:        %s/control/  (log in as %s, password %s)'
            % (self.server_url, shop.admin_email, shop.admin_password),
            '  NodeRails sim:  API %s, checkout pages %s, control API %s/_sim/'
            % (sim.api_url, sim.ui_url, sim.api_url),
            '  Webhook:        %s (signing secret %s)' % (sim.webhook_url, sim.webhook_secret),
            'Press Ctrl-C to stop; the shop and its data are deleted then.',
            '',
        ]
        print('\n'.join(lines), flush=True)

    def stop(self):
        if self.server is not None:
            self.server.stop()
        if self.simulator is not None:
            self.simulator.stop()


def _setuptools_builds_our_sdist():
    """The generated pyproject needs setuptools >= 77; without it pip builds in an isolated environment."""
    from importlib import metadata
    try:
        major = int(metadata.version('setuptools').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 77


if __name__ == '__main__':
    _exit(sys.argv)
