"""Bad input to `pretix-forge demo` is a clear error, checked before anything is started or written.

"Nothing started" is proven, not guessed: --python names a wrapper that records every run of
the interpreter, and every check below happens before the interpreter is first asked.
"""

import shlex
import socket
import stat
import sys
from types import SimpleNamespace

import pytest

from conftest import ACME, BLOCKFEST
from demo_support import PIN, REPO, free_port


@pytest.fixture
def recording_python(tmp_path):
    """A --python that works (this suite's pretix) and leaves a mark each time it is run."""
    marker = tmp_path / 'python-was-run'
    wrapper = tmp_path / 'python'
    wrapper.write_text('#!/bin/sh\necho run >> %s\nexec %s "$@"\n'
                       % (shlex.quote(str(marker)), shlex.quote(sys.executable)))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return SimpleNamespace(path=wrapper, marker=marker)


def assert_nothing_started(demo, python, cache_home):
    assert not python.marker.exists(), 'the pretix interpreter was started'
    assert not demo.seen, 'processes were started: %r' % list(demo.seen.values())
    assert not demo.workspaces(), 'a throwaway folder was created'
    assert not cache_home.exists(), 'the cache folder was created'


def test_a_port_in_use_is_named_and_nothing_starts(start_demo, recording_python, tmp_path):
    cache_home = tmp_path / 'cache'
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = start_demo(['--config', ACME, '--port', port, '--python', recording_python.path], cache_home=cache_home)
        assert demo.wait(30) == 1
    errors = '\n'.join(demo.stderr)
    assert 'port %d on 127.0.0.1 is in use' % port in errors and '--port' in errors, errors
    assert 'Traceback' not in demo.output
    assert_nothing_started(demo, recording_python, cache_home)


def test_missing_chromium_names_the_debian_packages(start_demo, recording_python, tmp_path):
    cache_home = tmp_path / 'cache'
    pictures = tmp_path / 'pictures'
    empty = tmp_path / 'no-programs-here'
    empty.mkdir()
    demo = start_demo(['--config', BLOCKFEST, '--screenshots', pictures, '--port', free_port(),
                       '--python', recording_python.path], cache_home=cache_home, env={'PATH': str(empty)})
    assert demo.wait(30) == 1
    errors = '\n'.join(demo.stderr)
    assert 'Chromium (chromium) and chromedriver is not on PATH' in errors, errors
    assert 'apt-get install chromium chromium-driver' in errors, errors
    assert not pictures.exists()
    assert_nothing_started(demo, recording_python, cache_home)


def test_a_python_without_pretix_is_refused_with_the_fix(start_demo, tmp_path):
    cache_home = tmp_path / 'cache'
    tools = REPO / '.venv' / 'bin' / 'python'  # the CLI suites' environment: no pretix
    demo = start_demo(['--config', ACME, '--port', free_port(), '--python', tools], cache_home=cache_home)
    assert demo.wait(60) == 1
    errors = '\n'.join(demo.stderr)
    assert '--python: %s cannot import pretix' % tools in errors, errors
    assert 'pip install pretix==%s' % PIN in errors, errors
    assert not demo.workspaces() and not cache_home.exists()


def test_a_bad_config_is_reported_with_file_and_key_and_nothing_starts(start_demo, recording_python, tmp_path):
    cache_home = tmp_path / 'cache'
    config = tmp_path / 'broken.toml'
    config.write_text(ACME.read_text().replace('currency = "EUR"', 'currency = "EURO"'))
    demo = start_demo(['--config', config, '--port', free_port(), '--python', recording_python.path],
                      cache_home=cache_home)
    assert demo.wait(30) == 1
    errors = '\n'.join(demo.stderr)
    assert str(config) in errors and 'noderails.currency' in errors, errors
    assert_nothing_started(demo, recording_python, cache_home)


def test_a_tmpdir_too_deep_for_chromiums_socket_is_named(start_demo, recording_python, tmp_path):
    cache_home = tmp_path / 'cache'
    deep = tmp_path / ('a-folder-deep-enough-for-chromium-to-fail' * 2)
    demo = start_demo(['--config', BLOCKFEST, '--screenshots', tmp_path / 'pictures', '--port', free_port(),
                       '--python', recording_python.path], cache_home=cache_home, tmpdir=deep)
    assert demo.wait(30) == 1
    errors = '\n'.join(demo.stderr)
    assert 'environment: error: TMPDIR: the temporary folder\'s path is too long for Chromium' in errors, errors
    assert 'TMPDIR=/tmp' in errors
    assert_nothing_started(demo, recording_python, cache_home)
