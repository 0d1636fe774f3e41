#!/usr/bin/env bash
# Builds the libarchive the release binary links (make dist, through scripts/static-link.sh) from
# Debian's own source package, with only what pretix-forge uses, and prints the folder holding it:
#   scripts/build-libarchive.sh DIR   ->   DIR/libarchive-<version>-<key>/{libarchive.a,copyright,COPYING}
#
# * Why not Debian's libarchive.a: it is configured for every format, so a static link of it takes
#   in nettle (LGPL-3.0+), libacl (LGPL-2.1+), libxml2, zstd, lz4, xz and bzip2, and
#   arc4random_buf, which binds the binary to glibc 2.36. pretix-forge writes tar, gzip (zlib)
#   and zip and reads them back; none of that needs a hash, a cipher, ACLs or extended attributes.
# * The source is the version of the installed libarchive-dev, whose headers the build compiles
#   against. apt checks it against Debian's signed Sources index (the deb-src entry
#   scripts/install-deps.sh adds); dpkg-source checks every file against the .dsc's checksums and
#   applies Debian's patches. It is regenerated with build/autogen.sh, as debian/rules does,
#   because those patches touch configure.ac and Makefile.am.
# * Cached: the folder's key covers the version, the options and the compiler, so it is built
#   once, and again only when one of them changes.
# * Reproducible: source paths mapped to ".", SOURCE_DATE_EPOCH from the package's changelog,
#   archive members without dates or owners (ar D).
set -euo pipefail

deps=$1
mkdir -p "$deps"
deps=$(cd "$deps" && pwd)

version=$(dpkg-query -W -f='${source:Version}' libarchive-dev 2>/dev/null) || {
    echo "build-libarchive: libarchive-dev is not installed; run make dist (scripts/install-deps.sh system dist)" >&2
    exit 1
}
# Everything but tar, zip and gzip through zlib is switched off; arc4random_buf (glibc 2.36) is
# hidden from configure, so archive_random.c uses its own generator seeded from /dev/urandom.
options=(
    --disable-shared --enable-static
    --disable-bsdtar --disable-bsdcat --disable-bsdcpio --disable-posix-regex-lib
    --disable-acl --disable-xattr
    --with-zlib --without-bz2lib --without-libb2 --without-iconv --without-lz4 --without-zstd
    --without-lzma --without-lzo2 --without-cng --without-mbedtls --without-nettle --without-openssl
    --without-xml2 --without-expat
    ac_cv_func_arc4random_buf=no ac_cv_func_arc4random=no
)
key=$( { echo "$version"; printf '%s\n' "${options[@]}"; gcc --version | head -n 1; sha256sum "$0"; } | sha256sum | cut -c1-16)
out="$deps/libarchive-$version-$key"
if [ -f "$out/libarchive.a" ]; then
    echo "$out"
    exit 0
fi

work=$(mktemp -d "$deps/.libarchive-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$deps/libarchive-build.log"
# The build's output goes to the log; what went wrong to the caller's stderr (3).
exec 3>&2
fail() {
    echo "build-libarchive: $1; the log is $log" >&3
    exit 1
}
echo "build-libarchive: building libarchive $version from Debian's source package (once; log: $log)" >&2
{
    cd "$work"
    apt-get source --download-only "libarchive=$version" ||
        fail "apt-get source libarchive=$version failed: is Debian's deb-src entry there? (scripts/install-deps.sh system dist adds it)"
    dpkg-source --require-strong-checksums -x "libarchive_${version#*:}.dsc" src ||
        fail "the source package does not match its .dsc"
    cd src
    # Without arc4random_buf archive_random.c defines a static one, which glibc 2.36's stdlib.h
    # also declares; libarchive 3.7 renamed it to la_arc4random_buf for that reason. Same here.
    sed -i 's/\barc4random_buf\b/la_arc4random_buf/g' libarchive/archive_random.c
    sh build/autogen.sh
    SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -STimestamp)
    export SOURCE_DATE_EPOCH
    # Debian's own flags (hardening as debian/rules asks), which map this folder's path to ".".
    ./configure --prefix=/usr CFLAGS="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)" \
        AR_FLAGS=crD RANLIB="ranlib -D" "${options[@]}"
    make -j"$(nproc)" libarchive.la
} > "$log" 2>&1 || fail "the build failed"
cd "$deps"

library="$work/src/.libs/libarchive.a"
# What was switched off must really be gone: a symbol of glibc 2.36, or of a library the binary
# must not link, would otherwise surface only in the wheel suite.
undefined=$(nm -u "$library" | awk '{print $2}' | sort -u)
for symbol in arc4random arc4random_buf acl_get_file getxattr nettle_sha1_init lzma_code ZSTD_compress LZ4_compress_default BZ2_bzCompress xmlInitParser iconv_open; do
    if grep -qx "$symbol" <<< "$undefined"; then
        fail "libarchive.a still calls $symbol; the configure options in $0 did not switch it off"
    fi
done
grep -qx deflate <<< "$undefined" || fail "libarchive.a does not call zlib's deflate; configure did not find zlib.h (install zlib1g-dev)"

staged="$work/out"
mkdir "$staged"
cp "$library" "$staged/libarchive.a"
# What the wheel ships for it (scripts/licenses.py): Debian's copyright file of this source and
# libarchive's own licence.
cp "$work/src/debian/copyright" "$staged/copyright"
cp "$work/src/COPYING" "$staged/COPYING"
echo "$version" > "$staged/version"
rm -rf "$out"
mv "$staged" "$out"
echo "$out"
