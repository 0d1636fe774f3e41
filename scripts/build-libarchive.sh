#!/usr/bin/env bash
# Builds the libarchive the release binary links (make dist, through scripts/static-link.sh) from
# Debian's own source package, with only what pretix-forge uses, and prints the folder holding it:
#   scripts/build-libarchive.sh DIR   ->   DIR/libarchive-<version>-<key>/{libarchive.a,copyright,COPYING}
# How it is fetched, checked, cached and made reproducible: scripts/debian-source.sh.
#
# Why not Debian's libarchive.a: it is configured for every format, so a static link of it takes in
# nettle (LGPL-3.0+), libacl (LGPL-2.1+), libxml2, zstd, lz4, xz and bzip2, and arc4random_buf,
# which binds the binary to glibc 2.36. pretix-forge writes tar, gzip (zlib) and zip and reads them
# back; none of that needs a hash, a cipher, ACLs or extended attributes.
set -euo pipefail
. "$(dirname "$0")/debian-source.sh"

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
debian_source_begin libarchive libarchive-dev "$1" "${options[@]}"
{
    debian_source_fetch libarchive
    # Without arc4random_buf archive_random.c defines a static one, which glibc 2.36's stdlib.h
    # also declares; libarchive 3.7 renamed it to la_arc4random_buf for that reason. Same here.
    sed -i 's/\barc4random_buf\b/la_arc4random_buf/g' libarchive/archive_random.c
    # Debian's patches touch configure.ac and Makefile.am: regenerated, as debian/rules does.
    sh build/autogen.sh
    debian_source_configure "${options[@]}"
    make -j"$(nproc)" libarchive.la
} > "$log" 2>&1 || debian_source_fail "the build failed"

library="$work/src/.libs/libarchive.a"
debian_source_forbid "$library" arc4random arc4random_buf acl_get_file getxattr nettle_sha1_init lzma_code \
    ZSTD_compress LZ4_compress_default BZ2_bzCompress xmlInitParser iconv_open
grep -qw deflate <<< "$(nm -u "$library")" ||
    debian_source_fail "libarchive.a does not call zlib's deflate; configure did not find zlib.h (install zlib1g-dev)"
debian_source_finish "$library" "$work/src/COPYING"
