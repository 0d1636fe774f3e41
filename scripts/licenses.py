#!/usr/bin/env python3
"""Collects the licences the static release binary owes, from the link itself (make dist):

    scripts/licenses.py SCRATCH OUT

reads SCRATCH/pretix-forge.map, the map the linker wrote (scripts/static-link.sh asks for it), and
names every archive and object that went into the binary. Each is traced to what it came from:

* an archive of a Debian package (found with dpkg -S): that package's /usr/share/doc/<package>/copyright;
* the libarchive and libcurl scripts/build-lib*.sh built from Debian's source: that source's copyright and
  the library's licence;
* the Swift toolchain's runtime and Foundation: the toolchain's LICENSE.txt;
* an object SwiftPM compiled from a package in SCRATCH/checkouts: that package's LICENSE, NOTICE and
  COPYING files, and those of the folders between it and the sources (vendored code such as toml++);
* an object compiled from a package kept in the repository's Vendor/<name>: its licence files, likewise;
* pretix-forge's own objects: nothing here, package-self adds our LICENSE.

OUT is replaced by OUT/files/<component>/<file>, the files the wheel carries under
.dist-info/licenses/, OUT/expression, the SPDX expression of the whole binary (ours and the
components'), and OUT/linked.tsv,
one line per input: its path, the component and the folder under .dist-info/licenses/ holding
its licences (LICENSE for ours, - for glibc's; the wheel suite reads it). A component this script
has no SPDX expression for stops the build: its licence must be read, and its expression added to
SPDX below, before the wheel can ship it.
glibc's start files (Scrt1.o, crti.o, crtn.o) carry its licence's linking exception and belong to
the system the wheel requires, like libc.so itself; they are listed, not shipped.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# SPDX expressions, read from each component's licence files. Debian's names the binary package.
SPDX = {
    "debian/libc6-dev": None,  # glibc: the system, not shipped (see above)
    "debian/libgcc-12-dev": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "debian/libstdc++-12-dev": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "debian/libssl-dev": "Apache-2.0",
    "debian/libxml2-dev": "MIT AND ISC",
    "debian/libicu-dev": "ICU",
    "debian/libexpat1-dev": "MIT",
    "debian/libdeflate-dev": "MIT",
    "debian/liblzma-dev": "LicenseRef-xz-public-domain",
    "debian/zlib1g-dev": "Zlib",
    "libarchive": "BSD-2-Clause",
    "libcurl": "curl",
    "swift": "Apache-2.0 WITH Swift-exception",
    "swift-foundation-icu": "Unicode-3.0",
    "swiftpm/swift-argument-parser": "Apache-2.0 WITH Swift-exception",
    "swiftpm/TOMLKit": "MIT",
    "swiftpm/swift-mustache": "Apache-2.0",
    "vendor/swift-mustache": "Apache-2.0",
}
LICENCE_NAME = re.compile(r"(LICEN[CS]E|COPYING|NOTICE)([._-].*)?$", re.IGNORECASE)


def fail(message):
    sys.exit(f"licenses.py: {message}")


def linked_inputs(map_file):
    """Every archive and object file the map names as an input, archives without their member."""
    inputs = set()
    for match in re.finditer(r"(?<![^\s(])(/[^\s()]+\.(?:a|o))(?:\([^)\s]*\))?(?=[\s)]|$)", map_file.read_text()):
        inputs.add(match.group(1))
    return sorted(inputs)


def toolchain_root():
    swiftc = shutil.which("swiftc") or fail("swiftc is not on PATH")
    return Path(os.path.realpath(swiftc)).parents[2]


def debian_package(path):
    found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if found.returncode != 0:
        return None
    return found.stdout.split(":", 1)[0].split(",")[0].strip()


def source_of(obj, scratch):
    """The source file SwiftPM compiled obj from, read from its build folder's records."""
    build = next((parent for parent in obj.parents if parent.name.endswith(".build")), None)
    if build is None:
        return None
    output_map = build / "output-file-map.json"
    candidates = []
    if output_map.exists():
        candidates = [key for key in json.loads(output_map.read_text()) if key]
    dependencies = obj.with_suffix(".d")
    if dependencies.exists():
        # make syntax: "target: first-source other-headers…"
        candidates = dependencies.read_text().split(":", 1)[-1].replace("\\\n", " ").split()[:1]
    plugins = scratch / "plugins"
    return next((Path(c) for c in candidates if not Path(c).is_relative_to(plugins)), None)


def licence_files(folder, top):
    """The licence files in folder and every folder above it up to top."""
    found = []
    while True:
        found += sorted(p for p in folder.iterdir() if p.is_file() and LICENCE_NAME.match(p.name))
        if folder == top:
            return found
        folder = folder.parent


def classify(path, scratch, checkout, toolchain):
    """(component, [licence files]) for one linked input."""
    real = Path(os.path.realpath(path))
    deps = checkout / ".build-deps"
    if real.is_relative_to(deps):
        # DEPS/<library>-<version>-<key>/, built from Debian's source (scripts/debian-source.sh).
        folder = deps / real.relative_to(deps).parts[0]
        return folder.name.split("-", 1)[0], [folder / "copyright", folder / "COPYING"]
    if real.is_relative_to(toolchain):
        if real.name == "lib_FoundationICU.a":
            # Foundation's own ICU. The toolchain ships no licence text for it; ICU's licence as
            # Debian's libicu-dev states it is the nearest on the machine (ICU 72, whose terms
            # the toolchain's newer ICU keeps under the name Unicode-3.0).
            return "swift-foundation-icu", [Path("/usr/share/doc/libicu-dev/copyright")]
        return "swift", [toolchain / "usr/share/swift/LICENSE.txt"]
    if real.is_relative_to(scratch):
        source = source_of(real, scratch)
        if source is None:
            fail(f"cannot tell which package {path} was compiled from; its build folder has no output-file-map.json or .d file")
        checkouts = scratch / "checkouts"
        if source.is_relative_to(checkouts):
            root = checkouts / source.relative_to(checkouts).parts[0]
            return f"swiftpm/{root.name}", licence_files(source.parent, root)
        vendor = checkout / "Vendor"
        if source.is_relative_to(vendor):
            # A package kept in the repository (Vendor/NAME, its README says why): its own licence.
            root = vendor / source.relative_to(vendor).parts[0]
            return f"vendor/{root.name}", licence_files(source.parent, root)
        if source.is_relative_to(checkout):
            return "pretix-forge", []
        fail(f"{path} was compiled from {source}, which is neither in {checkouts} nor in the checkout")
    package = debian_package(str(real)) or debian_package(path)
    if package is None:
        fail(f"{path} belongs to no Debian package (dpkg -S) and to no SwiftPM package; add a rule for it to scripts/licenses.py")
    package = package.split(":")[0]
    return f"debian/{package}", [Path("/usr/share/doc") / package / "copyright"]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/licenses.py SCRATCH OUT")
    scratch = Path(sys.argv[1]).resolve()
    out = Path(sys.argv[2])
    checkout = Path.cwd().resolve()
    map_file = scratch / "pretix-forge.map"
    if not map_file.exists():
        fail(f"{map_file} is missing; link the release binary with the flags of scripts/static-link.sh (make dist)")
    # The map's flag applies to every link of the build: when a change of flags relinks another
    # executable after this one, or beside it, the map is that one's, or garbled. Its licences
    # would then not be the binary's.
    if "/pretix_forge.build/PretixForgeCommand.swift.o" not in map_file.read_text():
        fail(f"{map_file} is not the map of pretix-forge's link (another executable was linked after it, or at the same "
             "time, after a change of build flags); run make dist again, which links pretix-forge afresh")
    toolchain = toolchain_root()

    components = {}
    rows = []
    for path in linked_inputs(map_file):
        component, files = classify(path, scratch, checkout, toolchain)
        if component == "pretix-forge":
            rows.append((path, component, "LICENSE"))
            continue
        if component not in SPDX:
            fail(f"{path} is from {component}, whose licence this script has not read: read "
                 f"{', '.join(map(str, files)) or 'its licence files'} and add its SPDX expression to SPDX in scripts/licenses.py")
        if SPDX[component] is None:
            rows.append((path, component, "-"))
            continue
        if not files:
            fail(f"{component} (linked from {path}) has no licence file; find its licence before shipping it")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            fail(f"the licence file {', '.join(missing)} of {component} (linked from {path}) is missing")
        components.setdefault(component, set()).update(files)
        rows.append((path, component, component))

    if out.exists():
        shutil.rmtree(out)
    (out / "files").mkdir(parents=True)
    for component, files in sorted(components.items()):
        for file in sorted(files):
            target = out / "files" / component / file.name
            if target.exists():
                fail(f"{component} has two licence files named {file.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    # pretix-forge's own licence (LICENSE, which package-self adds), then each component's, each
    # term once; a component with a choice (OR) is bracketed, so that the AND of all says what it means.
    terms = ["Apache-2.0"]
    for component in sorted(components):
        expression = SPDX[component]
        for term in [f"({expression})"] if " OR " in expression else expression.split(" AND "):
            if term not in terms:
                terms.append(term)
    (out / "expression").write_text(" AND ".join(terms) + "\n")
    (out / "linked.tsv").write_text("".join(f"{path}\t{component}\t{where}\n" for path, component, where in rows))


if __name__ == "__main__":
    main()
