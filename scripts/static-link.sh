#!/usr/bin/env bash
# Prepares the static link of pretix-forge into one binary that loads nothing but glibc, as a
# manylinux wheel must (make dist), and prints the `swift build` flags for it:
#   PKG_CONFIG_PATH=DIR swift build -c release --scratch-path SCRATCH $(scripts/static-link.sh DIR SCRATCH)
#
# * The Swift runtime and Foundation come in with --static-swift-stdlib. That link also names
#   libstdc++, libxml2 (FoundationXML) and zlib with plain -l, which the linker answers with the
#   shared library wherever one sits beside the archive. The one folder it searches before the
#   system's is the build's own products folder, so their archives are linked in there.
# * libarchive, libcurl and libcrypto reach the link through pkg-config (Package.swift's
#   system-library targets): DIR gets a libarchive.pc, libcurl.pc and libcrypto.pc naming, by
#   file (-l:libz.a), their archives and those of every library they and the libraries above
#   need, and libgcc_eh for the C++ runtime's unwinding instead of the shared libgcc_s.
#   libarchive's and libcurl's archives are not Debian's but built from Debian's source with only
#   what the tool uses (scripts/build-libarchive.sh: tar, zip and gzip, needing zlib alone;
#   scripts/build-libcurl.sh: HTTP and HTTPS, needing OpenSSL alone), cached in .build-deps/.
#   libcrypto's are what `pkg-config --static` says.
# * The linker writes a map of the link to SCRATCH/pretix-forge.map: which archive members and
#   objects went in. scripts/licenses.py reads it to collect the licences the wheel ships.
# * The binary is stripped, and the paths compiled into it (C's __FILE__ in assertions, Swift's
#   #filePath) are relative to the checkout: the wheel carries no path of the machine that built
#   it, and two checkouts build the same bytes.
set -euo pipefail

dir=$1
scratch=$2
mkdir -p "$dir"
glibc=" c m dl rt pthread resolv util "

archive() {
    local file
    file=$(gcc -print-file-name="lib$1.a")
    if [ "$file" = "lib$1.a" ]; then
        echo "static-link: lib$1.a is missing; install the Debian -dev package holding it (dpkg -S lib$1.so), or run make dist" >&2
        return 1
    fi
    echo "$file"
}

# -l:lib<name>.a for each non-glibc library of the flags given; glibc's stay shared.
static_flags() {
    local flag name
    for flag in "$@"; do
        name=${flag#-l}
        if [[ $glibc == *" $name "* ]]; then
            printf ' %s' "$flag"
        else
            archive "$name" >/dev/null
            printf ' -l:lib%s.a' "$name"
        fi
    done
}

products=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
mkdir -p "$products"
for name in stdc++ xml2 z; do
    ln -sf "$(archive "$name")" "$products/lib$name.a"
done

libarchive=$(scripts/build-libarchive.sh .build-deps)
libcurl=$(scripts/build-libcurl.sh .build-deps)
toolchain_needs=$(PKG_CONFIG_PATH='' pkg-config --static --libs-only-l libxml-2.0 zlib)
for package in libarchive libcurl libcrypto; do
    if [ "$package" = libarchive ]; then
        # shellcheck disable=SC2086 # one flag per word
        set -- -lz $toolchain_needs -lgcc_eh
        # SwiftPM takes no file names from a .pc, only flags: the folder, then the archive by name.
        own="-L$libarchive -l:libarchive.a"
    elif [ "$package" = libcurl ]; then
        # HTTP and HTTPS only: it needs OpenSSL alone (and its threaded resolver, glibc's pthread).
        # shellcheck disable=SC2046 # one flag per word
        set -- $(PKG_CONFIG_PATH='' pkg-config --static --libs-only-l libssl) -lpthread
        own="-L$libcurl -l:libcurl.a"
    else
        # shellcheck disable=SC2046 # one flag per word
        set -- $(PKG_CONFIG_PATH='' pkg-config --static --libs-only-l "$package")
        own=""
    fi
    # Each library once, at its last place: an archive serves only those named before it, and
    # SwiftPM drops a .pc's flags from the first repeated one on.
    # shellcheck disable=SC2046
    set -- $(printf '%s\n' "$@" | tac | awk '!seen[$0]++' | tac)
    printf 'Name: %s\nDescription: %s, linked statically\nVersion: %s\nLibs:%s\n' "$package" "$package" \
        "$(PKG_CONFIG_PATH='' pkg-config --modversion "$package")" "${own:+ $own}$(static_flags "$@")" > "$dir/$package.pc.new"
    # SwiftPM reads a .pc only when it plans the build: a changed one drops the release plan.
    # (Touching Package.swift would do it too, but breaks a debug build running beside this one.)
    if ! cmp -s "$dir/$package.pc.new" "$dir/$package.pc"; then
        mv "$dir/$package.pc.new" "$dir/$package.pc"
        rm -f "$scratch/release.yaml"
    else
        rm "$dir/$package.pc.new"
    fi
done

checkout="$(pwd)/"
map="$(cd "$scratch" && pwd)/pretix-forge.map"
echo "--static-swift-stdlib -Xlinker --strip-all -Xcc -ffile-prefix-map=$checkout= -Xcxx -ffile-prefix-map=$checkout=" \
    "-Xswiftc -file-prefix-map -Xswiftc $checkout= -Xlinker -Map=$map"
