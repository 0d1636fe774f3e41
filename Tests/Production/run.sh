#!/bin/sh
# Production-hardening tests: Tests/Production/run.sh [pytest args for the production suite]
#
# Starts one throwaway PostgreSQL cluster (with_postgres.py; 127.0.0.1, own port, deleted afterwards),
# runs the real-pretix suite (Tests/RealPretix/run.sh, unchanged) against it, then the production
# suite (this directory: several pretix worker processes, concurrency, crashes, reconciliation).
#   PRETIX_VENV          venv with pretix==2026.8.0 and Tests/Production/requirements.txt (default .venvs/pretix, made by `make deps`)
#   REALPRETIX_PLUGIN    optional sdist/wheel/directory of the plugin to (re)install into PRETIX_VENV first
#   REALPRETIX_SRC       optional rendered plugin tree that shadows the installed copy's code (PYTHONPATH)
#   REALPRETIX_RENDER=1  render the current Templates/ with .build/debug/pretix-forge and use it as REALPRETIX_SRC
#   PRODUCTION_ONLY=1    skip the real-pretix suite
#   REALPRETIX_JUNITXML  optional: where the real-pretix pass writes its JUnit XML (pytest --junitxml)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/Tests/Support/plugin-under-test.sh"
export PRETIX_VENV="$VENV" HERE PRODUCTION_ONLY REALPRETIX_JUNITXML
# Already in place (PYTHONPATH is exported); the inner real-pretix run must not redo it.
unset REALPRETIX_PLUGIN REALPRETIX_EXTRA_PLUGINS REALPRETIX_RENDER REALPRETIX_SRC
"$VENV/bin/python" "$HERE/with_postgres.py" -- sh -c '
    set -e
    if [ "$PRODUCTION_ONLY" != 1 ]; then
        echo "== real-pretix suite on PostgreSQL"
        "$HERE/../RealPretix/run.sh" ${REALPRETIX_JUNITXML:+"--junitxml=$REALPRETIX_JUNITXML"}
    fi
    echo "== production suite (PostgreSQL, several pretix workers)"
    cd "$HERE" && "$PRETIX_VENV/bin/python" -m pytest -q "$@"
' production "$@"
