"""Fixtures: the demo's example configs, demos started per test and killed if a test fails."""

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from demo_support import CACHE_HOME, REPO, Demo

ACME = REPO / 'Examples' / 'acme-tickets.toml'
BLOCKFEST = REPO / 'Examples' / 'blockfest' / 'forge.toml'
BLOCKFEST_OVERLAY = REPO / 'Examples' / 'blockfest' / 'templates'
TIMINGS = REPO / 'build' / 'demo-tests' / 'timings.json'


def load_config(path):
    with open(path, 'rb') as f:
        return tomllib.load(f)


@pytest.fixture
def start_demo(tmp_path):
    """start_demo(args, **kwargs) -> Demo; every demo a test started is killed afterwards,
    whatever the test did (a failing test must not leave a shop running)."""
    demos = []

    def start(args, **kwargs):
        demo = Demo(args, tmp_path / ('demo-%d' % len(demos)), **kwargs)
        demos.append(demo)
        return demo
    yield start
    for demo in demos:
        demo.kill_everything()


@pytest.fixture(scope='session')
def record_timing():
    """Start-up times measured by the tests, kept in build/demo-tests/timings.json."""
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}

    def record(name, seconds):
        timings[name] = round(seconds, 1)
        TIMINGS.write_text(json.dumps(timings, indent=2, sort_keys=True) + '\n')
    return record


@pytest.fixture(scope='session', autouse=True)
def suite_cache():
    """pretix-forge's cache for the demos that use --python (compiled stylesheets only)."""
    CACHE_HOME.mkdir(parents=True, exist_ok=True)
    return CACHE_HOME


def copy_alone(binary, destination: Path):
    """The binary in a folder of its own, away from the repository."""
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / 'pretix-forge'
    shutil.copy2(binary, target)
    return target
