"""`make run`, the first command of the README: it builds the tool and leaves the stock plugin
tree and the release files where it says."""

import subprocess

from conftest import REPO


def test_make_run_writes_tree_and_dist_and_says_where():
    result = subprocess.run(["make", "--no-print-directory", "run"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "build/pretix-noderails-1.0.0" in result.stdout and "dist/" in result.stdout
    tree = REPO / "build" / "pretix-noderails-1.0.0"
    assert (tree / "pretix_noderails" / "payment.py").is_file()
    for name in ("pretix_noderails-1.0.0.tar.gz", "pretix_noderails-1.0.0-py3-none-any.whl", "SHA256SUMS"):
        assert (REPO / "dist" / name).is_file()
