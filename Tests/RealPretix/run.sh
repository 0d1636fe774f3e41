#!/bin/sh
# Run the real-pretix suite: Tests/RealPretix/run.sh [pytest args]
#   PRETIX_VENV         venv with pretix, pytest, pytest-django (default .venvs/pretix, pretix 2026.8.0; the oldest
#                       pretix claimed is in .venvs/pretix-oldest; both made by `make deps`)
#   REALPRETIX_PLUGIN   optional: sdist/wheel/directory of the generated plugin to (re)install into PRETIX_VENV first
#                       (replaces whatever pretix-noderails is installed there, editable installs included)
#   REALPRETIX_SRC      optional: a rendered plugin tree put first on PYTHONPATH, shadowing the installed copy's
#                       code (the installed distribution still provides the pretix.plugin entry point)
#   REALPRETIX_RENDER=1 render the current Templates/ with .build/debug/pretix-forge into a temp dir and use it
#                       as REALPRETIX_SRC
#   REALPRETIX_MODULE / REALPRETIX_PROVIDER / REALPRETIX_WEBHOOK_PATH  for a non-stock render
#                       (defaults pretix_noderails / noderails / noderails)
#   REALPRETIX_EXTRA_PLUGINS  optional: space-separated paths of further plugin sdists, each installed with
#                       pip install --no-deps --force-reinstall after REALPRETIX_PLUGIN (the side-by-side variant)
#   REALPRETIX_SECOND_MODULE / REALPRETIX_SECOND_PROVIDER / REALPRETIX_SECOND_WEBHOOK_PATH  module, provider
#                       identifier and webhook path segment of that second variant, for test_side_by_side.py
#                       (e.g. pretix_acme_crypto / acme_crypto / acme-crypto from Examples/acme-tickets.toml);
#                       without REALPRETIX_SECOND_MODULE those tests are skipped ...
#   REALPRETIX_REQUIRE_SIDE_BY_SIDE=1  ... unless this is set: then they fail instead (use it in CI)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/Tests/Support/plugin-under-test.sh"
cd "$HERE"
"$VENV/bin/python" -m pytest -q "$@"
