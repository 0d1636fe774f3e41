# Sourced by scripts/build-libarchive.sh and scripts/build-libcurl.sh: one C library built for the
# release binary (make dist) from Debian's own source package, with only the options its caller
# names, into a cached folder DEPS/<name>-<version>-<key>/ holding <name>.a, Debian's copyright
# file of that source, the library's own licence and its version.
#
# * The source is the version of the installed -dev package, whose headers Swift compiles against.
#   apt checks it against Debian's signed Sources index (the deb-src entry scripts/install-deps.sh
#   adds); dpkg-source checks every file against the .dsc's checksums and applies Debian's patches.
# * Cached: the key covers the version, the options, the compiler and both scripts, so it is built
#   once, and again only when one of them changes.
# * Reproducible: Debian's own flags (hardening as its rules ask) map the source folder to ".",
#   SOURCE_DATE_EPOCH comes from the package's changelog, archive members carry no dates or
#   owners (ar D).

# debian_source_begin NAME DEV_PACKAGE DEPS OPTION... (NAME: libarchive, libcurl): sets version, out, work and log, and ends
# the calling script, printing out, when the cached build is there.
debian_source_begin() {
    name=$1
    local dev_package=$2 deps=$3
    shift 3
    mkdir -p "$deps"
    deps=$(cd "$deps" && pwd)
    version=$(dpkg-query -W -f='${source:Version}' "$dev_package" 2>/dev/null) || {
        echo "$(basename "$0" .sh): $dev_package is not installed; run make dist (scripts/install-deps.sh system dist)" >&2
        exit 1
    }
    local key
    key=$( { echo "$version"; printf '%s\n' "$@"; gcc --version | head -n 1; sha256sum "$0" "${BASH_SOURCE[0]}"; } |
        sha256sum | cut -c1-16)
    out="$deps/$name-$version-$key"
    if [ -f "$out/$name.a" ]; then
        echo "$out"
        exit 0
    fi
    work=$(mktemp -d "$deps/.$name-build.XXXXXX")
    # shellcheck disable=SC2064 # this folder, now
    trap "rm -rf '$work'" EXIT
    log="$deps/$name-build.log"
    # The build's output goes to the log; what went wrong to the caller's stderr (3).
    exec 3>&2
    echo "$(basename "$0" .sh): building $name $version from Debian's source package (once; log: $log)" >&2
}

debian_source_fail() {
    echo "$(basename "$0" .sh): $1; the log is $log" >&3
    exit 1
}

# debian_source_fetch SOURCE_PACKAGE: the verified, patched source in $work/src; run in the log.
debian_source_fetch() {
    local source_package=$1
    cd "$work"
    apt-get source --download-only "$source_package=$version" ||
        debian_source_fail "apt-get source $source_package=$version failed: is Debian's deb-src entry there? (scripts/install-deps.sh system dist adds it)"
    dpkg-source --require-strong-checksums -x "${source_package}_${version#*:}.dsc" src ||
        debian_source_fail "the source package does not match its .dsc"
    cd src
    SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -STimestamp)
    export SOURCE_DATE_EPOCH
}

# debian_source_configure OPTION...: ./configure with Debian's flags and the caller's options.
debian_source_configure() {
    ./configure --prefix=/usr CFLAGS="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)" \
        AR_FLAGS=crD RANLIB="ranlib -D" "$@"
}

# debian_source_forbid ARCHIVE SYMBOL...: what was switched off must really be gone; a symbol of a
# newer glibc, or of a library the binary must not link, would otherwise surface only in the wheel
# suite.
debian_source_forbid() {
    local archive=$1 undefined symbol
    shift
    undefined=$(nm -u "$archive" | awk '{print $2}' | sort -u)
    for symbol in "$@"; do
        if grep -qx "$symbol" <<< "$undefined"; then
            debian_source_fail "$name.a still calls $symbol; the configure options in $0 did not switch it off"
        fi
    done
}

# debian_source_finish ARCHIVE LICENCE: the cached folder (archive, Debian's copyright file, the
# licence, the version), printed.
debian_source_finish() {
    local archive=$1 licence=$2 staged="$work/out"
    mkdir "$staged"
    cp "$archive" "$staged/$name.a"
    cp "$work/src/debian/copyright" "$staged/copyright"
    cp "$licence" "$staged/COPYING"
    echo "$version" > "$staged/version"
    rm -rf "$out"
    mv "$staged" "$out"
    echo "$out"
}
