#!/usr/bin/env python3
"""Prints a value of compat.toml for the Makefile, a list space-separated: `compat.py python.versions`."""

import sys
import tomllib
from pathlib import Path

value = tomllib.loads((Path(__file__).resolve().parent.parent / "compat.toml").read_text())
for key in sys.argv[1].split("."):
    value = value[key]
print(" ".join(value) if isinstance(value, list) else value)
