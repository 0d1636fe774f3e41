"""Run a local NodeRails for a pretix you run yourself.

    export NR_API_KEY=key_live NR_WEBHOOK_SECRET=whsec_live
    python -m noderails_sim --port 8765 --app-id app_live --api-key-env NR_API_KEY \\
        --webhook-url http://127.0.0.1:8000/ORGANIZER/EVENT/noderails/webhook/ \\
        --webhook-secret-env NR_WEBHOOK_SECRET

Then, in pretix (event -> Settings -> Payment -> Pay with crypto), set the NodeRails API URL
and payment page URL to the printed addresses, and the same App ID / API key / webhook secret.
Secrets are read from environment variables so they never appear in `ps` output.
"""

import argparse
import os
import signal
import sys
import threading

from .server import Simulator


def _env(name, what):
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise SystemExit('noderails-sim: environment variable %s (%s) is not set or empty' % (name, what))
    return value


def build_parser():
    p = argparse.ArgumentParser(prog='python -m noderails_sim', description='Local NodeRails simulator (binds 127.0.0.1).')
    p.add_argument('--port', type=int, default=8765, help='API port (default 8765; 0 = any free port)')
    p.add_argument('--ui-port', type=int, default=None,
                   help='serve the hosted checkout from this second port (a different origin, as in production)')
    p.add_argument('--app-id', help='live App ID accepted by the API')
    p.add_argument('--api-key-env', metavar='VAR', help='environment variable holding the live API key')
    p.add_argument('--test-app-id', help='test-mode App ID accepted by the API')
    p.add_argument('--test-api-key-env', metavar='VAR', help='environment variable holding the test API key')
    p.add_argument('--webhook-url', help="pretix's webhook URL (https://PRETIX/ORG/EVENT/noderails/webhook/)")
    p.add_argument('--webhook-secret-env', metavar='VAR', help='environment variable holding the webhook signing secret')
    p.add_argument('--test-webhook-secret-env', metavar='VAR',
                   help='environment variable holding the webhook secret used for sessions of the test app')
    p.add_argument('--signature-scheme', choices=('timestamp.body', 'body'), default='timestamp.body')
    p.add_argument('--timestamp-unit', choices=('ms', 's'), default='ms')
    p.add_argument('--duplicates', type=int, default=1, help='deliver every webhook N times (default 1)')
    p.add_argument('--no-post-message', action='store_true',
                   help='the hosted checkout does not notify the embedding page (tests the polling path)')
    p.add_argument('--retry-after-failure', action='store_true',
                   help='a failed attempt leaves the session payable (a wallet payment retried in the checkout)')
    p.add_argument('--no-auto-webhooks', action='store_true',
                   help='do not send webhooks when the checkout page is used or refunds settle')
    p.add_argument('--refund-status', choices=('PENDING', 'COMPLETED'), default='PENDING')
    p.add_argument('--refund-settle-seconds', type=float, default=5.0,
                   help='PENDING refunds complete (and payment.refunded is sent) after this many seconds')
    p.add_argument('--control-token-env', metavar='VAR', help='require header x-sim-token with this value on /_sim/')
    p.add_argument('--quiet', action='store_true')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    credentials = {}
    if args.app_id:
        credentials[args.app_id] = _env(args.api_key_env, 'live API key') if args.api_key_env else None
        if credentials[args.app_id] is None:
            raise SystemExit('noderails-sim: --app-id needs --api-key-env')
    if args.test_app_id:
        if not args.test_api_key_env:
            raise SystemExit('noderails-sim: --test-app-id needs --test-api-key-env')
        credentials[args.test_app_id] = _env(args.test_api_key_env, 'test API key')
    secret = _env(args.webhook_secret_env, 'webhook secret')
    secrets_by_app = {}
    if args.test_webhook_secret_env:
        if not args.test_app_id:
            raise SystemExit('noderails-sim: --test-webhook-secret-env needs --test-app-id')
        secrets_by_app[args.test_app_id] = _env(args.test_webhook_secret_env, 'test webhook secret')
    if args.webhook_url and not (secret or secrets_by_app):
        raise SystemExit('noderails-sim: --webhook-url needs --webhook-secret-env')
    sim = Simulator(
        credentials=credentials or None, port=args.port, separate_ui=args.ui_port is not None,
        ui_port=args.ui_port or 0, webhook_url=args.webhook_url, webhook_secret=secret,
        webhook_secrets=secrets_by_app, signature_scheme=args.signature_scheme,
        timestamp_unit=args.timestamp_unit, webhook_duplicates=args.duplicates,
        post_message=not args.no_post_message, retry_after_failure=args.retry_after_failure,
        refund_status=args.refund_status,
        auto_webhooks=not args.no_auto_webhooks, refund_settle_seconds=args.refund_settle_seconds,
        control_token=_env(args.control_token_env, 'control token'), verbose=not args.quiet,
    )
    sim.start()
    print('NodeRails simulator running (no real funds move).')
    print('  NodeRails API URL:          %s' % sim.api_url)
    print('  NodeRails payment page URL: %s' % sim.ui_url)
    print('  control API:                %s/_sim/' % sim.api_url)
    if not credentials:
        print('  WARNING: no --app-id given: any non-empty App ID / API key is accepted.')
    if not args.webhook_url:
        print('  no --webhook-url: webhooks are not sent.')
    sys.stdout.flush()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    sim.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
