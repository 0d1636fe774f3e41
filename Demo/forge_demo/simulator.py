"""The NodeRails simulator as its own process (`python -m noderails_sim`), as Simulator/README.md runs it."""

import os
import re
import secrets
import subprocess
import sys
import threading
import time

from .lifecycle import DemoError, guarded, stop_process, tail

_URL_LINE = re.compile(r'^\s*NodeRails (API|payment page) URL:\s*(http://127\.0\.0\.1:\d+)\s*$')
START_TIMEOUT = 30


class SimulatorProcess:
    """API and hosted checkout on two free ports (two origins, as in production); signed
    webhooks to ``webhook_url``. Its webhook log lines are passed on to our stdout."""

    def __init__(self, workspace, webhook_url, signature_payload, timestamp_unit):
        self.app_id = 'app-demo-' + secrets.token_hex(4)
        self.api_key = 'nr_demo_sk_' + secrets.token_hex(16)
        self.webhook_secret = 'whsec_demo_' + secrets.token_hex(16)
        self.webhook_url = webhook_url
        self.log_path = os.path.join(workspace, 'simulator.log')
        self.api_url = self.ui_url = None
        # Secrets travel in the environment, never on the command line (ps shows that).
        env = dict(os.environ, NR_API_KEY=self.api_key, NR_WEBHOOK_SECRET=self.webhook_secret)
        argv = [sys.executable, '-m', 'noderails_sim', '--port', '0', '--ui-port', '0',
                '--app-id', self.app_id, '--api-key-env', 'NR_API_KEY',
                '--webhook-url', webhook_url, '--webhook-secret-env', 'NR_WEBHOOK_SECRET',
                '--signature-scheme', signature_payload, '--timestamp-unit', timestamp_unit]
        self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(guarded(argv), stdout=subprocess.PIPE, stderr=self._log,
                                        stdin=subprocess.DEVNULL, env=env)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        urls = {}
        while len(urls) < 2:
            line = self.process.stdout.readline().decode('utf-8', 'replace')
            if not line or time.monotonic() > deadline:
                self.stop()
                raise DemoError('the NodeRails simulator did not start:\n%s' % tail(self.log_path))
            match = _URL_LINE.match(line)
            if match:
                urls[match.group(1)] = match.group(2)
        self.api_url, self.ui_url = urls['API'], urls['payment page']
        threading.Thread(target=self._relay, name='simulator-output', daemon=True).start()
        return self

    def _relay(self):
        """Webhook deliveries ("[noderails-sim] webhook payment.captured #1 -> 200") are worth seeing."""
        for raw in iter(self.process.stdout.readline, b''):
            line = raw.decode('utf-8', 'replace')
            if line.startswith('[noderails-sim]'):
                sys.stdout.write(line)
                sys.stdout.flush()

    def stop(self):
        stop_process(self.process)
        self._log.close()
