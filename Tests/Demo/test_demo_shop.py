"""`pretix-forge demo` serves a throwaway shop: the customer buys, NodeRails' hosted checkout and
its signed webhook pay, the organiser's login works, and nothing is left once it stops.

The first demo of this module creates pretix-forge's cached pretix environment from scratch
(a fresh XDG_CACHE_HOME under build/demo-tests), as on a user's first run; the second reuses
it. The other demos use this suite's own pretix through --python.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html import unescape
from types import SimpleNamespace

import pytest

from conftest import ACME, copy_alone, load_config
from demo_support import PIN, REPO, Demo, forge_binary, free_port, listening_sockets, pretix_python, read_proc
from http_customer import Customer, Organiser, backend_order_status, item_ids, order_status, wait_for

FIRST_USE_CACHE = REPO / 'build' / 'demo-tests' / 'first-use'
ACME_CONFIG = load_config(ACME)


def pip_cache():
    """The pip download cache this machine already has. With XDG_CACHE_HOME pointed at an empty
    folder pip would look for its cache there too and download pretix and its ~140 packages anew
    on every run; a user's first demo finds their usual pip cache."""
    found = subprocess.run([sys.executable, '-m', 'pip', 'cache', 'dir'], capture_output=True, text=True)
    return {'PIP_CACHE_DIR': found.stdout.strip()} if found.returncode == 0 and found.stdout.strip() else {}


@pytest.fixture(scope='module')
def first_use(tmp_path_factory, record_timing):
    """A demo started with an empty cache folder, then stopped with SIGTERM once it printed its URL."""
    shutil.rmtree(FIRST_USE_CACHE, ignore_errors=True)
    demo = Demo(['--config', ACME, '--port', free_port()], tmp_path_factory.mktemp('first-use'),
                cache_home=FIRST_USE_CACHE, env=dict(os.environ, **pip_cache()))
    try:
        banner, seconds = demo.wait_for_banner(timeout=900)
        record_timing('first use: environment created and shop started (s)', seconds)
        exit_code = demo.stop(signal.SIGTERM)
    except BaseException:
        demo.kill_everything()
        raise
    return SimpleNamespace(demo=demo, banner=banner, exit_code=exit_code)


def test_first_start_creates_the_pinned_pretix_environment_under_the_cache_folder(first_use):
    demo = first_use.demo
    creating = [line for line in demo.stderr if 'first use: creating the pretix %s environment' % PIN in line]
    assert creating, demo.output
    environments = sorted((FIRST_USE_CACHE / 'pretix-forge').glob('pretix-%s-*' % PIN))
    assert len(environments) == 1 and str(environments[0]) in creating[0]
    assert any(line.startswith('pretix-forge demo: pip: collecting ') for line in demo.stderr), demo.output
    assert any('pretix environment ready in' in line for line in demo.stderr), demo.output

    python = environments[0] / 'bin' / 'python'
    probe = 'import pretix, selenium; from importlib import metadata; print(pretix.__version__); ' \
            'print(sorted(d.metadata["Name"].lower() for d in metadata.distributions()))'
    result = subprocess.run([str(python), '-c', probe], capture_output=True, text=True, check=True)
    version, installed = result.stdout.splitlines()
    assert version == PIN
    # The variant went into the demo's own throwaway folder, never into the shared environment.
    assert 'pretix-acme-crypto' not in installed and 'pretix-noderails' not in installed

    assert first_use.exit_code == 0, demo.output
    demo.assert_nothing_left(first_use.banner.ports)


def test_acme_demo_sells_two_tickets_paid_through_the_hosted_checkout_and_its_webhook(
        first_use, start_demo, tmp_path, record_timing):
    # The binary alone in a folder away from the repository: templates, the demo's Python and
    # the NodeRails simulator all come from inside it.
    alone = tmp_path / 'alone'
    forge = copy_alone(forge_binary(), alone)
    shutil.copy2(ACME, alone / 'acme.toml')
    port = free_port()
    demo = start_demo(['--config', 'acme.toml', '--port', port], cache_home=FIRST_USE_CACHE, forge=forge, cwd=alone)
    banner, seconds = demo.wait_for_banner()
    record_timing('cached environment: shop started (s)', seconds)
    assert not any('creating the pretix' in line for line in demo.stderr), 'the cached environment was not reused'
    assert banner.shop_url == 'http://127.0.0.1:%d/demo/shop/' % port

    # Everything listens on 127.0.0.1 only: pretix and the simulator's API and checkout pages.
    processes = demo.remember_processes()
    sockets = listening_sockets([p.pid for p in processes])
    assert {address for address, _port in sockets} == {'127.0.0.1'}, sockets
    assert set(banner.ports) <= {port for _address, port in sockets}

    customer = Customer(banner.shop_url)
    event = customer.get(banner.shop_url)
    ids = item_ids(event)
    assert len(ids) == 2 and 'Regular ticket' in event.text and 'Reduced ticket' in event.text
    assert '€' in event.text, 'the event is not in the variant\'s currency (EUR)'
    customer.add_to_cart({ids[0]: 1, ids[1]: 1})
    payment = customer.checkout_to_payment_step()
    assert ACME_CONFIG['provider']['public_name'] in unescape(payment.text)
    assert ACME_CONFIG['branding']['payment_description']['en'] in unescape(payment.text)

    confirm = customer.choose_payment(payment, ACME_CONFIG['provider']['identifier'])
    session = re.search(r'data-session-id="([^"]+)"', confirm.text).group(1)
    frame = re.search(r'<iframe[^>]*\ssrc="([^"]+)"', confirm.text).group(1)
    assert frame == '%s/checkout/%s' % (banner.sim_ui, session)
    assert ACME_CONFIG['branding']['confirm_heading']['en'] in unescape(confirm.text)

    # The order is placed before the payment arrived (a customer without JavaScript could): it
    # waits, and only NodeRails' webhook can settle it.
    order_page = customer.place_order(confirm)
    order_url = order_page.url
    assert order_status(order_page) == ('warning', 'Payment pending')

    # The customer pays on NodeRails' hosted checkout page: what its Pay button posts.
    hosted = customer.get(frame)
    assert 'id="nr-pay"' in hosted.text and 'Pay 40.00 EUR' in hosted.text
    paid = customer.session.post('%s/checkout/%s/pay' % (banner.sim_ui, session), timeout=30)
    assert paid.status_code == 200 and paid.json()['status'] == 'PAID'
    wait_for(lambda: order_status(customer.get(order_url)) == ('success', 'Paid'), what='the order to be paid')

    deliveries = customer.session.get(banner.sim_control + 'deliveries', timeout=30).json()
    captured = [d for d in deliveries if d['type'] == 'payment.captured']
    assert len(captured) == 1, deliveries
    delivery = captured[0]
    assert (delivery['url'], delivery['status']) == (banner.webhook_url, 200)
    assert {'x-noderails-signature', 'x-noderails-timestamp'} <= {h.lower() for h in delivery['requestHeaders']}
    assert json.loads(delivery['requestBody'])['data']['checkoutSessionId'] == session

    # The printed backend login shows the organiser the same paid order.
    organiser = Organiser(banner.backend_url)
    organiser.log_in(banner.admin_email, banner.admin_password)
    code = re.search(r'/order/([A-Z0-9]+)/', order_url).group(1)
    detail = organiser.get('event/demo/shop/orders/%s/' % code)
    assert backend_order_status(detail) == ('success', 'Paid')
    assert '40.00' in detail.text

    demo.remember_processes()
    assert demo.stop(signal.SIGINT) == 0, demo.output
    demo.assert_nothing_left(banner.ports)


def test_a_killed_pretix_forge_takes_its_shop_and_data_with_it(start_demo, record_timing):
    """SIGKILL leaves pretix-forge no chance to clean up: the kernel tells the demo (PR_SET_PDEATHSIG),
    which stops the simulator and deletes the throwaway folder itself."""
    demo = start_demo(['--config', ACME, '--port', free_port(), '--python', pretix_python()])
    banner, seconds = demo.wait_for_banner()
    record_timing('--python: shop started (s)', seconds)
    processes = demo.remember_processes()
    assert len(processes) >= 2, processes  # the demo and the simulator
    assert all(read_proc(p.pid).pgid != read_proc(demo.process.pid).pgid for p in processes), \
        'the demo shares the caller\'s process group, so a Ctrl-C in the terminal would hit it directly'
    assert demo.workspaces(), 'no throwaway folder under TMPDIR while the demo runs'

    demo.send(signal.SIGKILL)
    demo.wait()
    demo.assert_nothing_left(banner.ports)


def _has_entries(folder):
    try:
        return any(folder.iterdir())
    except FileNotFoundError:   # the demo removed it meanwhile
        return False


def test_ctrl_c_while_the_environment_is_created_leaves_no_half_environment(start_demo, tmp_path):
    cache_home = tmp_path / 'cache'
    demo = start_demo(['--config', ACME, '--port', free_port()], cache_home=cache_home,
                      env=dict(os.environ, **pip_cache()))
    # Interrupted while pip installs pretix, once its temporary folders (downloads, builds) exist in
    # the staging folder's tmp/.
    deadline = time.monotonic() + 300

    def pip_at_work():
        installing = any('-m pip install' in p.command and 'requirements.txt' in p.command for p in demo.seen.values())
        return installing and any(_has_entries(tmp) for tmp in (cache_home / 'pretix-forge').glob('.pretix-*/tmp'))
    while not pip_at_work():
        assert demo.process.poll() is None and time.monotonic() < deadline, demo.output
        demo.remember_processes()
        time.sleep(0.05)
    assert demo.stop(signal.SIGINT) == 130, demo.output
    assert 'pretix-forge demo: interrupted; nothing was left running' in demo.stderr, demo.output
    # Neither the environment nor its staging folder: the next start creates it from scratch.
    assert not [p.name for p in (cache_home / 'pretix-forge').iterdir() if p.name.startswith(('pretix-', '.pretix-'))]
    demo.assert_nothing_left([])
