#!/usr/bin/env python3
"""make bench: pretix-forge's build speed against what users would otherwise run, in one run.

Measures the binary users get, the one `pip install pretix-forge` puts on PATH (make bench
installs the wheel of `make dist` into a fresh virtualenv), on the same machine and tree:
  * start-up: `pretix-forge --version`;
  * `pretix-forge build` of the default plugin (render, sdist, wheel, SHA256SUMS) vs
    `python -m build --sdist --wheel --no-isolation` (setuptools) on that tree, rebuilding into
    one folder as both tools do on a maintainer's machine, and into a new folder each time;
  * batch builds of 1, 10 and 100 variants, to show how cost grows.
Prints medians, ratios and peak memory (max RSS of the measured process), each against its target.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORGE = Path(os.environ.get("PRETIX_FORGE", REPO / ".build" / "release" / "pretix-forge"))
STOCK = (REPO / "Examples" / "noderails.toml").read_text()
# Issue 28's targets.
TARGETS = {"start-up (ms)": 5.0, "single build ratio (setuptools / forge)": 100.0, "100 variants (s)": 1.0,
           "peak memory (MiB)": 48.0}


def measure(args, cwd=None, runs=5):
    """Median wall time (s) and the largest max-RSS (MiB) over `runs` executions; `args` may be a
    function of the run's number."""
    times, peaks = [], []
    for run in range(runs):
        run_args = args(run) if callable(args) else args
        start = time.perf_counter()
        process = subprocess.Popen(run_args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"bench: {' '.join(map(str, run_args))} failed:\n{process.stderr.read().decode()}")
        times.append(elapsed)
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(times), max(peaks)


def variant_configs(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = (STOCK.replace('name = "pretix-noderails"', f'name = "pretix-noderails-v{index}"')
                .replace('module = "pretix_noderails"', f'module = "pretix_noderails_v{index}"')
                .replace('identifier = "noderails"', f'identifier = "noderails_v{index}"'))
        (folder / f"v{index:03d}.toml").write_text(text)
    return folder


def main():
    if not FORGE.is_file():
        sys.exit(f"bench: {FORGE} missing; `make bench` builds it in release mode")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run([str(FORGE), "generate", "--out", str(scratch / "tree")], check=True, stdout=subprocess.DEVNULL)
        rows = []
        startup, startup_peak = measure([str(FORGE), "--version"], runs=51)
        rows.append(("pretix-forge --version (start-up)", startup, startup_peak))
        # 21 runs: a build takes some 20 ms, where a 2-core VM's run-to-run noise is several ms.
        forge_time, forge_peak = measure([str(FORGE), "build", "--out", str(scratch / "dist-forge")], runs=21)
        rows.append(("pretix-forge build (default plugin)", forge_time, forge_peak))
        # Each run into a folder of its own: every file written afresh, where a rebuild into the
        # same folder keeps the archives it already holds byte for byte.
        fresh_time, fresh_peak = measure(lambda run: [str(FORGE), "build", "--out", str(scratch / f"dist-fresh-{run}")], runs=21)
        rows.append(("pretix-forge build into a new folder", fresh_time, fresh_peak))
        setuptools_time, setuptools_peak = measure(
            [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", str(scratch / "dist-setuptools"), str(scratch / "tree")])
        rows.append(("python -m build --sdist --wheel (setuptools)", setuptools_time, setuptools_peak))
        for count in (1, 10, 100):
            configs = variant_configs(scratch / f"configs-{count}", count)
            elapsed, peak = measure([str(FORGE), "build", "--config", str(configs), "--out", str(scratch / f"dist-{count}")],
                                    runs=21 if count == 1 else 5)
            rows.append((f"pretix-forge build, {count} variant{'s' if count > 1 else ''}", elapsed, peak))

    print(f"{'job':<48} {'median':>10} {'peak RSS':>10}")
    for name, elapsed, peak in rows:
        print(f"{name:<48} {elapsed * 1000:>8.1f}ms {peak:>7.1f}MiB")
    ratio = setuptools_time / forge_time
    hundred = rows[-1][1]
    peak = max(r[2] for r in rows if r[0].startswith("pretix-forge"))
    print()
    print(f"binary: {FORGE}")
    verdicts = [
        ("start-up", startup * 1000, "ms", "≤", TARGETS["start-up (ms)"]),
        ("setuptools / pretix-forge, same tree", ratio, "x", "≥", TARGETS["single build ratio (setuptools / forge)"]),
        ("100 variants", hundred, "s", "<", TARGETS["100 variants (s)"]),
        ("pretix-forge peak memory", peak, "MiB", "≤", TARGETS["peak memory (MiB)"]),
    ]
    for name, value, unit, relation, target in verdicts:
        met = {"≤": value <= target, "≥": value >= target, "<": value < target}[relation]
        print(f"{name}: {value:.2f} {unit}   (target {relation} {target:g} {unit}: {'met' if met else 'NOT met'})")
    print(f"cost per variant at 100: {hundred / 100 * 1000:.1f}ms vs {rows[-3][1] * 1000:.1f}ms for one")
    print(f"setuptools / pretix-forge into a new folder: {setuptools_time / fresh_time:.2f} x")


if __name__ == "__main__":
    main()
