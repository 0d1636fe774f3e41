"""Shared fixtures: the pretix-forge binary under test and helpers to run it."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Support"))

from forge_fixtures import forge, tool_wheel  # noqa: E402,F401  (fixtures, found by name)
DEFAULT_CONFIG = REPO / "Examples" / "noderails.toml"

# Hostile but valid text: quotes, backslashes, template syntax of every target language,
# printf placeholders, emoji and a right-to-left override. Metadata fields stay single-line.
HOSTILE_LINE = "O'Brien \"Pay\" \\ </script><!-- {% now %} {{ x }} {# c #} %s %(n)s ${x} `x` 🚀 \u202egnp.exe"
HOSTILE_MULTILINE = HOSTILE_LINE + "\nsecond line ']]>\t\u200f"


def toml_string(text):
    """A TOML basic string for ``text`` (json's escapes are valid TOML escapes)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def hostile_config_text():
    replacements = {
        "summary": HOSTILE_LINE,
        "author": HOSTILE_LINE,
        "verbose_name": HOSTILE_MULTILINE,
        "public_name": HOSTILE_MULTILINE,
    }
    lines = []
    for line in DEFAULT_CONFIG.read_text().splitlines():
        key = line.split(" =", 1)[0]
        lines.append(f"{key} = {toml_string(replacements[key])}" if key in replacements else line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def run_forge(forge):
    def run(*args, cwd=None, env=None, check=True):
        result = subprocess.run([str(forge), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)
        if check and result.returncode != 0:
            pytest.fail(f"pretix-forge {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def python_tools():
    """The test venv's interpreter, which has flake8, isort, pytest, build, twine."""
    return Path(sys.executable)
