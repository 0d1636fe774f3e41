#!/bin/sh
# The cluster suite: Tests/Cluster/run.sh [pytest args]
#
# pretix as its deployment guide runs it (cluster.py): a throwaway PostgreSQL (with_postgres.py),
# redis, gunicorn with 3 workers, 2 celery workers, `runperiodic`, the NodeRails simulator; all on
# 127.0.0.1, all stopped and removed afterwards. Takes the REALPRETIX_* variables of
# Tests/RealPretix/run.sh (REALPRETIX_SRC: a rendered copy shadowing the installed plugin, e.g. a
# deliberately broken one from Tests/RealPretix/break_copy.py).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/Tests/Support/plugin-under-test.sh"
export PRETIX_VENV="$VENV" HERE
command -v redis-server >/dev/null || { echo "redis-server missing: make deps-test installs it" >&2; exit 1; }
"$VENV/bin/python" "$ROOT/Tests/Production/with_postgres.py" --database cluster -- sh -c '
    cd "$HERE" && "$PRETIX_VENV/bin/python" -m pytest -q "$@"
' cluster "$@"
