"""The wheel and its binary stay within their ceilings (scripts/dist_size.py): a dependency that
brings in ICU's data again, or a second copy of anything large, fails here."""

import importlib.util
from pathlib import Path

from forge_fixtures import tool_wheel  # noqa: F401  (fixture, found by name)

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dist_size", REPO / "scripts" / "dist_size.py")
dist_size = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dist_size)


def test_the_wheel_and_its_binary_are_within_their_ceilings(tool_wheel):
    measured = dist_size.sizes(tool_wheel)
    over = {name: size for name, size in measured.items() if size > dist_size.CEILINGS[name]}
    assert not over, f"{tool_wheel.name}: {dist_size.report(measured)}; ceilings {dist_size.CEILINGS}"
