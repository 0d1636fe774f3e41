#!/usr/bin/env python3
"""The size of pretix-forge's wheel and of the binary in it, against the targets of issue 28
(a wheel the size of ruff's). `make dist` prints the line; Tests/Wheel/test_wheel_size.py fails
when a size passes its ceiling.
    scripts/dist_size.py WHEEL
"""

import sys
import zipfile
from pathlib import Path

MB = 1000 * 1000
# Bytes. The binary is measured as it sits in the wheel, which is what pip installs.
TARGETS = {"wheel": 12 * MB, "binary": 40 * MB}
# What the wheel suite holds each size to: the targets themselves.
CEILINGS = TARGETS


def sizes(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        binary = next(info for info in archive.infolist() if info.filename.endswith(".data/scripts/pretix-forge"))
    return {"wheel": wheel.stat().st_size, "binary": binary.file_size}


def report(measured: dict) -> str:
    return ", ".join(f"{name} {measured[name] / MB:.1f} MB (target ≤ {TARGETS[name] / MB:g} MB: "
                     f"{'met' if measured[name] <= TARGETS[name] else 'NOT met'})" for name in TARGETS)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: scripts/dist_size.py WHEEL (the wheel `make dist` wrote in dist/)")
    print("size:", report(sizes(Path(sys.argv[1]))))
