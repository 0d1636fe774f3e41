# Sourced by Tests/RealPretix/run.sh and Tests/Production/run.sh (POSIX sh, set -e): puts the
# plugin under test into place from the REALPRETIX_* variables both scripts document.
# Expects ROOT (the repository); sets VENV and, for a rendered or given source tree, PYTHONPATH.
VENV=${PRETIX_VENV:-$ROOT/.venvs/pretix}
if [ -n "$REALPRETIX_PLUGIN" ]; then
    "$VENV/bin/pip" install -q --no-deps --force-reinstall "$REALPRETIX_PLUGIN"
fi
for extra in $REALPRETIX_EXTRA_PLUGINS; do
    "$VENV/bin/pip" install -q --no-deps --force-reinstall "$extra"
done
if [ "$REALPRETIX_RENDER" = 1 ]; then
    REALPRETIX_SRC=$(mktemp -d)/plugin
    "$ROOT/.build/debug/pretix-forge" generate --templates "$ROOT/Templates" --out "$REALPRETIX_SRC" >/dev/null
    trap 'rm -rf "$(dirname "$REALPRETIX_SRC")"' EXIT
fi
if [ -n "$REALPRETIX_SRC" ]; then
    PYTHONPATH="$REALPRETIX_SRC${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONPATH
fi
