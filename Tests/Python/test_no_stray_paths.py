"""The repository names no folder of a particular machine and cites no document it does not hold.

A default pointing at a folder in someone's home directory works on one machine and fails
obscurely on every other; a comment citing a file outside the repository sends the reader nowhere. Both
have happened here, so every tracked text file is read on each run.
"""

import re
import subprocess

from conftest import REPO

# Roots under which only one machine's files live. System paths (/usr, /etc, /dev, /bin, /proc)
# name the same thing everywhere and are fine.
MACHINE_ROOTS = ("home", "root", "Users", "work", "tmp", "mnt", "srv", "opt", "media", "private", "var/folders")
# An absolute path starts at a separator, not inside a URL ("https://host/tmp/…") or a relative
# path ("build/tmp/…"), and names at least one folder below the root.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])/(?:%s)/[\w.-]" % "|".join(re.escape(root) for root in MACHINE_ROOTS))
# Documents outside the repository that earlier comments cited.
OUTSIDE_REFERENCE = re.compile(r"\bseeds?\s+0\d\d\b|\.\./shared/|\bseeds/\d", re.IGNORECASE)


def tracked_text_files():
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for name in names.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary: .mo catalogues, images
        yield name, data.decode("utf-8", errors="replace")


def findings(pattern):
    found = []
    for name, text in tracked_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.finditer(line):
                found.append("%s:%d: %s" % (name, number, match.group(0)))
    return found


def test_the_scan_sees_the_repository():
    names = [name for name, _text in tracked_text_files()]
    assert "Makefile" in names and "Templates/__module__/payment.py" in names and len(names) > 150


def test_no_tracked_file_names_a_folder_of_one_machine():
    assert findings(ABSOLUTE_PATH) == [], "point defaults inside the repository (e.g. $(CURDIR)/.venvs/pretix)"


def test_no_tracked_file_cites_a_document_outside_the_repository():
    assert findings(OUTSIDE_REFERENCE) == [], "cite docs/noderails-contract.md or another file under docs/"


def test_the_patterns_catch_what_they_are_for():
    # Built from their parts, so that this file holds no such path itself.
    caught = [line % {"root": "/" + root} for line, root in [
        ("PRETIX_VENV=${PRETIX_VENV:-%(root)s/dev/venvs/pretix}", "home"),
        ('default: "%(root)s/scratch/venv/bin/python"', "work"),
        ("see %(root)s/me/notes.txt", "Users"),
        ("cd %(root)s/pretix-run && pytest", "tmp"),
        ('open("%(root)s/.cache/x")', "root"),
    ]]
    passed = [
        "#!/usr/bin/env bash",
        "https://example.com/home/index.html",
        "rm -rf build/tmp/x",
        "cat /dev/null /etc/os-release",
        "$(CURDIR)/.venvs/pretix",
        "~/work/x",
    ]
    assert [line for line in caught if not ABSOLUTE_PATH.search(line)] == []
    assert [line for line in passed if ABSOLUTE_PATH.search(line)] == []
    assert OUTSIDE_REFERENCE.search("as the spec (%s 000) says" % "seed")
    assert OUTSIDE_REFERENCE.search("../" + "shared/reference/x")
    assert not OUTSIDE_REFERENCE.search("random.Random(args.seed)")
