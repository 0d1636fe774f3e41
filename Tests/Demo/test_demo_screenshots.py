"""`pretix-forge demo --screenshots` for the Blockfest example (logo, colours, texts in three
languages, a template overlay): the pictures, the contact sheet, and the branding in what
Chromium rendered, checked in the saved DOM, in the computed styles and in the pixels."""

import json
import os
import re
import shutil
import signal
import tempfile
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from conftest import BLOCKFEST, BLOCKFEST_OVERLAY, load_config
from demo_support import REPO, Demo, free_port, pretix_python

CONFIG = load_config(BLOCKFEST)
BRANDING = CONFIG['branding']
LANGUAGES = ['en', 'de', 'de-informal']  # the languages of Examples/blockfest/forge.toml, English first
STEPS = [('payment-step', 'Payment step'), ('confirm-before-payment', 'Confirm page before payment'),
         ('confirm-after-payment', 'Confirm page after payment'), ('order-paid', 'Paid order page')]
LOGO_URL = re.compile(r'^http://127\.0\.0\.1:\d+/static/%s/logo\.svg$' % CONFIG['package']['module'])


def rgb(hex_colour):
    value = hex_colour.lstrip('#')
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def css(colour):
    return 'rgb(%d, %d, %d)' % colour


# Seconds the demo may take before it starts preparing the shop (rendering and packaging the
# plugin, probing the pretix it is given).
PREPARING_TIMEOUT = 180

ACCENT, TEXT = rgb(BRANDING['accent_color']), rgb(BRANDING['text_color'])
# The hosted checkout's Pay button, as the simulator styles it.
PAY_BUTTON = rgb(re.search(r'#nr-pay \{ background: (#[0-9a-f]{6})',
                           (REPO / 'Simulator/noderails_sim/assets/checkout.css').read_text()).group(1))


@pytest.fixture(scope='module')
def short_tmpdir():
    """A TMPDIR short enough for Chromium's socket (pytest's own folders are too deep; the demo
    refuses those with a message, see test_demo_errors.py). Must be empty again afterwards."""
    folder = Path(tempfile.mkdtemp(prefix='pfd-'))
    yield folder
    leftovers = list(folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    assert not leftovers, 'a demo left %s behind' % leftovers


@pytest.fixture
def start_screenshot_demo(start_demo, short_tmpdir):
    def start(args, **kwargs):
        return start_demo(args, tmpdir=short_tmpdir, **kwargs)
    return start


@pytest.fixture(scope='module')
def shots(tmp_path_factory, short_tmpdir):
    work = tmp_path_factory.mktemp('screenshots')
    folder = work / 'pictures'
    port = free_port()
    demo = Demo(['--config', BLOCKFEST, '--templates', BLOCKFEST_OVERLAY, '--screenshots', folder, '--port', port,
                 '--python', pretix_python()], work / 'run', tmpdir=short_tmpdir)
    try:
        code = demo.wait(timeout=900)
    except BaseException:
        demo.kill_everything()
        raise
    manifest = json.loads((folder / 'pretix-forge-demo.json').read_text()) if code == 0 else None
    return SimpleNamespace(demo=demo, code=code, folder=folder, port=port, manifest=manifest)


def page(shots, language, step):
    [found] = [p for p in shots.manifest['pages'] if (p['language'], p['step']) == (language, step)]
    return found


def dom(shots, found):
    """The saved DOM as text a reader sees (tags dropped, entities resolved, whitespace collapsed)."""
    html = (shots.folder / found['dom']).read_text(encoding='utf-8')
    return ' '.join(unescape(re.sub(r'<[^>]+>', ' ', html)).split()), html


def pixels(shots, found, wanted):
    with Image.open(shots.folder / found['png']) as image:
        return sum(count for count, colour in image.convert('RGB').getcolors(maxcolors=1 << 24) if colour == wanted)


def test_screenshots_exit_cleanly_and_leave_nothing_running(shots):
    demo = shots.demo
    assert shots.code == 0, demo.output
    assert any('chromium' in p.command or 'chromedriver' in p.command for p in demo.seen.values()), \
        'no Chromium was seen running, so nothing below proves it was stopped'
    demo.assert_nothing_left([shots.port])


def test_screenshots_listen_on_loopback_only(shots):
    """pretix and the simulator on 127.0.0.1; chromedriver, which has no bind option, on the
    loopback interface (127.0.0.1 and ::1)."""
    assert shots.code == 0, shots.demo.output
    listening = shots.demo.listening
    driver = {(address, port) for address, port, command in listening if 'chromedriver' in command}
    others = {(address, port) for address, port, command in listening if 'chromedriver' not in command}
    assert (('127.0.0.1', shots.port) in others) and len(others) >= 3, listening  # pretix, the simulator's two
    assert {address for address, _port in others} == {'127.0.0.1'}, listening
    assert {address for address, _port in driver} <= {'127.0.0.1', '::1'}, listening


def test_four_pictures_per_language_and_a_contact_sheet_with_captions(shots):
    assert shots.code == 0, shots.demo.output
    assert shots.manifest['languages'] == LANGUAGES
    expected = ['%s-%d-%s.png' % (language, i + 1, step) for language in LANGUAGES for i, (step, _) in enumerate(STEPS)]
    assert sorted(p.name for p in shots.folder.glob('*.png')) == sorted(expected)
    for name in expected:
        with Image.open(shots.folder / name) as image:
            assert image.format == 'PNG' and image.width == 1280 and image.height >= 600, (name, image.size)

    sheet = ContactSheet()
    sheet.feed((shots.folder / 'index.html').read_text(encoding='utf-8'))
    assert sorted(sheet.figures) == sorted((name, caption) for language in LANGUAGES for i, (step, caption)
                                           in enumerate(STEPS) for name in ['%s-%d-%s.png' % (language, i + 1, step)])
    assert sorted(sheet.links) == sorted(expected)
    assert sheet.headings == ['English en', 'Deutsch de', 'Deutsch (Du) de-informal']


@pytest.mark.parametrize('language', LANGUAGES)
def test_branding_reaches_the_pages_in_every_language(shots, language):
    assert shots.code == 0, shots.demo.output
    texts = {key: value[language] for key, value in BRANDING.items() if isinstance(value, dict)}

    payment = page(shots, language, 'payment-step')
    text, html = dom(shots, payment)
    assert texts['payment_description'] in text and texts['payment_description'] in payment['visible_text']
    assert CONFIG['provider']['public_name'] in payment['visible_text']
    assert 'blockfest-note' in html, 'the template overlay did not reach the payment step'

    before = page(shots, language, 'confirm-before-payment')
    text, _html = dom(shots, before)
    for key in ('confirm_heading', 'confirm_instructions', 'waiting_message'):
        assert texts[key] in text and texts[key] in before['visible_text'], key
    assert texts['success_message'] not in before['visible_text']
    assert before['heading']['text'] == texts['confirm_heading']
    assert before['heading']['border-left-color'] == css(ACCENT)
    assert before['logo']['loaded'] and LOGO_URL.match(before['logo']['src']), before['logo']
    assert not before['paid_banner']['visible']

    after = page(shots, language, 'confirm-after-payment')
    assert after['paid_banner']['visible']
    assert after['paid_banner']['text'].strip() == texts['success_message']
    assert (after['paid_banner']['background-color'], after['paid_banner']['color']) == (css(ACCENT), css(TEXT))
    assert texts['waiting_message'] not in after['visible_text']

    # Visibly: the accent colour is in the pictures (logo and heading rule before; the paid banner after),
    # and so is the hosted checkout in its frame, ready to pay.
    assert pixels(shots, before, ACCENT) > 500
    assert pixels(shots, after, ACCENT) > pixels(shots, before, ACCENT) + 20000
    assert pixels(shots, before, PAY_BUTTON) > 1000, 'the hosted checkout is not in the picture'

    paid = page(shots, language, 'order-paid')
    assert '/order/' in paid['url'] and 'textbubble-success' in dom(shots, paid)[1]


def test_a_folder_of_the_users_is_never_replaced(start_screenshot_demo, tmp_path):
    folder = tmp_path / 'my-site'
    folder.mkdir()
    (folder / 'index.html').write_text('mine')
    demo = start_screenshot_demo(['--config', BLOCKFEST, '--screenshots', folder, '--python', pretix_python()])
    assert demo.wait(60) == 1
    assert 'refusing to replace a folder that pretix-forge demo did not write' in '\n'.join(demo.stderr)
    assert [p.name for p in folder.iterdir()] == ['index.html'] and (folder / 'index.html').read_text() == 'mine'
    assert not demo.seen and not demo.workspaces()


def test_ctrl_c_during_screenshots_writes_nothing(start_screenshot_demo, tmp_path):
    folder = tmp_path / 'pictures'
    demo = start_screenshot_demo(['--config', BLOCKFEST, '--screenshots', folder, '--port', free_port(),
                                  '--python', pretix_python()])
    # Interrupted while the shop is being prepared.
    deadline = time.monotonic() + PREPARING_TIMEOUT
    while not any('starting pretix-blockfest-pay' in line for line in demo.stderr):
        assert demo.process.poll() is None, demo.output
        if time.monotonic() > deadline:
            demo.kill_everything()
            raise AssertionError('the demo did not start preparing the shop within %d s\n%s'
                                 % (PREPARING_TIMEOUT, demo.output))
        demo.remember_processes()
        time.sleep(0.05)
    assert demo.stop(signal.SIGINT) == 130
    assert not folder.exists()
    demo.assert_nothing_left([])


def test_a_failure_after_everything_started_still_leaves_nothing(start_screenshot_demo, tmp_path):
    """Chromium's driver fails once pretix and the simulator run: the demo reports it, exits 1,
    and its processes, ports and throwaway data are gone all the same."""
    programs = tmp_path / 'programs'
    programs.mkdir()
    (programs / 'chromium').symlink_to(shutil.which('chromium'))
    broken = programs / 'chromedriver'
    broken.write_text('#!/bin/sh\necho "this chromedriver is broken" >&2\nexit 1\n')
    broken.chmod(0o755)
    folder = tmp_path / 'pictures'
    port = free_port()
    demo = start_screenshot_demo(['--config', BLOCKFEST, '--screenshots', folder, '--port', port,
                                  '--python', pretix_python()], env=dict(os.environ, PATH=str(programs)))
    assert demo.wait(300) == 1
    assert 'Chromium did not start' in '\n'.join(demo.stderr), demo.output
    assert any('noderails_sim' in p.command for p in demo.seen.values()), 'the simulator never ran'
    assert not folder.exists()
    demo.assert_nothing_left([port])


class ContactSheet(HTMLParser):
    def __init__(self):
        super().__init__()
        self.figures, self.links, self.headings = [], [], []
        self._image = self._text = None
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'img':
            self._image = attrs['src']
        elif tag == 'a':
            self.links.append(attrs['href'])
        elif tag in ('figcaption', 'h2'):
            self._in, self._text = tag, ''

    def handle_data(self, data):
        if self._in:
            self._text += data

    def handle_endtag(self, tag):
        if tag == 'figcaption':
            self.figures.append((self._image, self._text.strip()))
        elif tag == 'h2':
            self.headings.append(' '.join(self._text.split()))
        if tag == self._in:
            self._in = None
