#!/usr/bin/env bash
# Installs what pretix-forge needs to build and test, and only what is missing.
# Idempotent: a second run with everything present takes about a second.
#   scripts/install-deps.sh system build   Debian packages to build and run the tool (`make run`)
#   scripts/install-deps.sh system test    those the test suites need besides (`make test`)
#   scripts/install-deps.sh venv DIR REQ   a virtualenv at DIR with the requirements file REQ
set -euo pipefail

# SwiftPM resolves the Swift packages with git; libarchive and libcrypto are linked through
# pkg-config.
build_packages=(pkg-config libarchive-dev libssl-dev git)
# python3-venv for the suites' virtualenvs, gettext for the catalogue checks, PostgreSQL for the
# production suite, Chromium for the browser suite, shellcheck for the workflow lint, Node.js for
# the simulator's checkout-script tests.
test_packages=(python3-venv gettext postgresql chromium chromium-driver shellcheck nodejs)

install_system() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # apt lists are stale or absent on a fresh machine; refresh once per install.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The requirements file and the files it includes with -r: a changed pin in either rebuilds.
requirements_digest() {
    local file=$1 included
    {
        cat "$file"
        sed -n 's/^-r[[:space:]]*//p' "$file" | while read -r included; do cat "$(dirname "$file")/$included"; done
    } | sha256sum | cut -d' ' -f1
}

install_venv() {
    local dir=$1 requirements=$2
    local stamp="$dir/.requirements.sha256"
    local want
    want=$(requirements_digest "$requirements")
    if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "preparing virtualenv $dir from $requirements"
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
}

case "${1:-}" in
    system)
        case "${2:-}" in
            build) install_system "${build_packages[@]}" ;;
            test) install_system "${build_packages[@]}" "${test_packages[@]}" ;;
            *) echo "usage: $0 system build|test" >&2; exit 2 ;;
        esac ;;
    venv) install_venv "$2" "$3" ;;
    *) echo "usage: $0 system build|test | venv DIR REQUIREMENTS" >&2; exit 2 ;;
esac
