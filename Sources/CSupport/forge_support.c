#define _GNU_SOURCE
#include "forge_support.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int forge_exchange_paths(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

#ifdef __linux__
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>

/* Debian's libexpat.a (the SVG logo check) salts its hash tables with arc4random_buf, which glibc
   has only since 2.36, like arc4random below: defined here, for the same reason. */
void arc4random_buf(void *buffer, size_t length) {
    unsigned char *next = buffer;
    while (length > 0) {
        ssize_t got = getrandom(next, length, 0);
        if (got > 0) {
            next += got;
            length -= (size_t)got;
        }
    }
}

/* The static release build links GCC's libstdc++.a, built on glibc 2.36. Any C++ code that can
   throw a standard exception takes in its old-ABI std::string (cow-string-inst.o), which takes in
   std::random_device (random.o), which refers to arc4random: glibc has it only since 2.36, and the
   binary would bind to GLIBC_2.36 and not run on Ubuntu 22.04 (glibc 2.35). Defined here, the link
   binds that reference to this function instead. Nothing in pretix-forge creates a random_device;
   should anything call it, it gets the kernel's random bytes, as glibc's arc4random does. */
uint32_t arc4random(void) {
    uint32_t value;
    arc4random_buf(&value, sizeof value);
    return value;
}
#endif
