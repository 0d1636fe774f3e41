#!/usr/bin/env bash
# Builds the libcurl the release binary links (make dist, through scripts/static-link.sh) for
# `webhook send`, from Debian's own source package, and prints the folder holding it:
#   scripts/build-libcurl.sh DIR   ->   DIR/libcurl-<version>-<key>/{libcurl.a,copyright,COPYING}
# How it is fetched, checked, cached and made reproducible: scripts/debian-source.sh.
#
# Why not Debian's libcurl: it ships no static archive, and its shared one brings nghttp2, libpsl,
# libidn2, librtmp, libssh2, brotli, zstd, GSS-API and LDAP. `webhook send` makes one POST over
# HTTP or HTTPS, with the system's OpenSSL (already linked for hashes and HMAC) verifying the
# certificate, and follows no redirect: everything else is switched off.
set -euo pipefail
. "$(dirname "$0")/debian-source.sh"

options=(
    --disable-shared --enable-static --with-openssl
    # Where the trusted certificates are is decided at run time (WebhookTransport.swift), not
    # where this machine keeps them: the wheel runs on other distributions too.
    --without-ca-bundle --without-ca-path --without-ca-fallback --disable-openssl-auto-load-config
    --without-zlib --without-brotli --without-zstd --without-libpsl --without-libidn2 --without-nghttp2
    --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 --without-librtmp --without-libssh
    --without-libssh2 --without-wolfssh --without-gssapi --without-libgsasl --without-hyper
    --disable-ldap --disable-ldaps --disable-rtsp --disable-proxy --disable-dict --disable-telnet
    --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher
    --disable-mqtt --disable-ftp --disable-file --disable-manual --disable-libcurl-option
    --disable-crypto-auth --disable-ntlm --disable-ntlm-wb --disable-tls-srp --disable-unix-sockets
    --disable-cookies --disable-http-auth --disable-doh --disable-mime --disable-netrc
    --disable-progress-meter --disable-dnsshuffle --disable-get-easy-options --disable-alt-svc
    --disable-headers-api --disable-hsts --disable-websockets --disable-versioned-symbols
    # glibc 2.36's arc4random would bind the binary to it; curl then seeds from OpenSSL.
    ac_cv_func_arc4random=no
)
debian_source_begin libcurl libcurl4-openssl-dev "$1" "${options[@]}"
{
    debian_source_fetch curl
    # The source as Debian builds its OpenSSL flavour (debian/rules): without the last two
    # patches of the series, which turn it into the GnuTLS and NSS flavours.
    patch -R -p1 < debian/patches/99_nss.patch
    patch -R -p1 < debian/patches/90_gnutls.patch
    # Debian's patches touch configure.ac and Makefile.am: regenerated, as debian/rules does.
    autoreconf -fi
    debian_source_configure "${options[@]}"
    make -C lib -j"$(nproc)" libcurl.la
} > "$log" 2>&1 || debian_source_fail "the build failed"

library="$work/src/lib/.libs/libcurl.a"
debian_source_forbid "$library" arc4random arc4random_buf nghttp2_session_client_new psl_builtin idn2_lookup_ul \
    inflate gss_init_sec_context ldap_init libssh2_init BrotliDecoderCreateInstance ZSTD_createDStream
grep -qw SSL_CTX_new <<< "$(nm -u "$library")" ||
    debian_source_fail "libcurl.a does not call OpenSSL; configure did not find libssl (install libssl-dev)"
debian_source_finish "$library" "$work/src/COPYING"
