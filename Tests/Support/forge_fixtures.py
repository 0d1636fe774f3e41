"""The pretix-forge binaries under test, as pytest fixtures: the debug build the suites drive and
the tool's own wheel (`make dist`). Suites import the fixtures they use into their conftest or
test module, so every suite finds them the same way and fails, never skips, when one is missing."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def forge():
    """The debug build (PRETIX_FORGE overrides)."""
    path = Path(os.environ.get("PRETIX_FORGE", REPO / ".build" / "debug" / "pretix-forge")).resolve()
    if not path.is_file():
        pytest.fail(f"pretix-forge binary not found at {path}; run `make build` (or set PRETIX_FORGE)")
    return path


@pytest.fixture(scope="session")
def tool_wheel():
    """pretix-forge's own platform wheel, as `make dist` builds it (PRETIX_FORGE_WHEEL names it)."""
    named = os.environ.get("PRETIX_FORGE_WHEEL")
    if not named or not Path(named).is_file():
        pytest.fail(f"pretix-forge's wheel not found at {named!r}; run `make dist` and set PRETIX_FORGE_WHEEL (make test does)")
    return Path(named).resolve()
