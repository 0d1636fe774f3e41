#!/usr/bin/env bash
# Installs what pretix-forge needs to build and test, and only what is missing.
# Idempotent: a second run with everything present takes about a second.
#   scripts/install-deps.sh system build   Debian packages to build and run the tool (`make run`)
#   scripts/install-deps.sh system dist    those the static release build needs besides (`make dist`)
#   scripts/install-deps.sh system test    those the test suites need besides (`make test`)
#   scripts/install-deps.sh venv DIR REQ   a virtualenv at DIR with the requirements file REQ
#   scripts/install-deps.sh venv DIR REQ X.Y  the same on CPython X.Y (pyenv's, else pythonX.Y on PATH),
#                                          made with uv ($UV, else uv on PATH)
set -euo pipefail

# SwiftPM resolves the Swift packages with git; libarchive, libcrypto and libcurl (`webhook send`)
# are linked through pkg-config.
build_packages=(pkg-config libarchive-dev libssl-dev libcurl4-openssl-dev libexpat1-dev libdeflate-dev git)
# The static archives of libcrypto's and libxml2's (which FoundationXML loads) dependencies, and
# zlib, for the wheel's single binary (scripts/static-link.sh); what builds libarchive from
# Debian's source packages (scripts/build-lib*.sh: dpkg-source, autotools); binutils' objcopy
# (Makefile, dist).
dist_packages=(binutils libicu-dev liblzma-dev libxml2-dev zlib1g-dev dpkg-dev autoconf automake libtool)
# python3-venv for the suites' virtualenvs, gettext for the catalogue checks, PostgreSQL for the
# production suite, Chromium for the browser suite, shellcheck for the workflow lint, Node.js for
# the simulator's checkout script in its tests, redis for the cluster suite (pretix's cache, sessions and
# celery broker).
test_packages=(python3-venv gettext postgresql chromium chromium-driver shellcheck nodejs redis-server)

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

# apt-get source (scripts/build-lib*.sh) needs Debian's deb-src entries, which Debian's images
# leave out: they are added once, as a file of their own mirroring the deb.debian.org entries.
deb_src=/etc/apt/sources.list.d/pretix-forge-deb-src.sources
install_deb_src() {
    if [ -f "$deb_src" ] || apt-cache showsrc libarchive 2>/dev/null | grep -q '^Version:'; then
        return 0
    fi
    local entries sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    entries=$(awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Types: deb(\n|$)/ && /deb\.debian\.org/' /etc/apt/sources.list.d/*.sources |
        sed 's/^Types: deb$/Types: deb-src/')
    if [ -z "$entries" ]; then
        echo "no deb.debian.org entry in /etc/apt/sources.list.d/*.sources to mirror: add Debian's deb-src entry to $deb_src" >&2
        return 1
    fi
    echo "adding Debian's deb-src entries ($deb_src)"
    printf '%s\n' "$entries" | $sudo tee "$deb_src" >/dev/null
    $sudo apt-get update -qq
}

# The requirements file and the files it includes with -r: a changed pin in either rebuilds.
requirements_digest() {
    local file=$1 included
    {
        cat "$file"
        sed -n 's/^-r[[:space:]]*//p' "$file" | while read -r included; do cat "$(dirname "$file")/$included"; done
    } | sha256sum | cut -d' ' -f1
}

# The interpreter of Python X.Y. A claimed version that is missing is an error, never a skip.
interpreter() {
    local version=$1 prefix
    if prefix=$(pyenv prefix "$version" 2>/dev/null) && [ -x "$prefix/bin/python$version" ]; then
        echo "$prefix/bin/python$version"
    elif command -v "python$version" >/dev/null; then
        command -v "python$version"
    else
        echo "Python $version is not installed, and compat.toml claims it: install it (pyenv install $version)" >&2
        return 1
    fi
}

install_venv() {
    local dir=$1 requirements=$2 version=${3:-}
    local stamp="$dir/.requirements.sha256"
    local want python
    want=$(requirements_digest "$requirements")
    if [ -n "$version" ]; then
        python=$(interpreter "$version")
        # The interpreter's exact build is part of the key: a new patch release rebuilds the venv.
        want=$(echo "$want $("$python" -VV)" | sha256sum | cut -d' ' -f1)
    fi
    if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "preparing virtualenv $dir from $requirements"
    if [ -n "$version" ]; then
        # Made afresh (a virtualenv cannot move to another interpreter in place) by uv, which
        # fills one in seconds where pip takes minutes; --seed adds pip for the suites' installs.
        local uv=${UV:-uv}
        "$uv" venv -q --clear --seed --python "$python" "$dir"
        "$uv" pip install -q --python "$dir/bin/python" -r "$requirements"
        echo "$want" > "$stamp"
        return 0
    fi
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
}

case "${1:-}" in
    system)
        case "${2:-}" in
            build) install_system "${build_packages[@]}" ;;
            dist) install_system "${build_packages[@]}" "${dist_packages[@]}" && install_deb_src ;;
            test) install_system "${build_packages[@]}" "${dist_packages[@]}" "${test_packages[@]}" && install_deb_src ;;
            *) echo "usage: $0 system build|dist|test" >&2; exit 2 ;;
        esac ;;
    venv) install_venv "$2" "$3" "${4:-}" ;;
    *) echo "usage: $0 system build|dist|test | venv DIR REQUIREMENTS [PYTHON-VERSION]" >&2; exit 2 ;;
esac
