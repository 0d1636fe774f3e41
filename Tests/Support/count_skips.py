#!/usr/bin/env python3
"""Fail `make test` on any skipped or xfailed test that is not on ALLOWED, and on any suite that
ran no test at all.

    count_skips.py REPORT.xml...

Each argument is the JUnit XML one run of `make test` wrote: pytest's --junitxml, or `swift test
--xunit-output`, for which SwiftPM writes Swift Testing's results beside the given file, as
REPORT-swift-testing.xml (the given file holds XCTest's, which may be none). A report that is
missing fails too: a suite that never ran cannot prove it skipped nothing; so does one that holds
no test case (a filter that matched nothing, a collection that found nothing). Prints one line
per skip and xfail with its reason, then the totals.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# "<report file name>::<classname>::<test name>" -> why that test may skip in `make test`.
# Empty: every suite runs every test; a new entry needs a reason a reviewer accepts.
ALLOWED = {}


def report_files(path: Path):
    """The files one run wrote for the report ``path``: itself and Swift Testing's beside it."""
    beside = path.with_name(path.stem + '-swift-testing' + path.suffix)
    return [p for p in (path, beside) if p.is_file()]


def cases(report: Path):
    return list(ET.parse(report).getroot().iter('testcase'))


def skips(report: Path):
    """(test id, kind, reason) for every skipped or xfailed test case in one report file."""
    for case in cases(report):
        for outcome in case.findall('skipped'):
            kind = 'xfail' if outcome.get('type') == 'pytest.xfail' else 'skip'
            test = '%s::%s::%s' % (report.name, case.get('classname'), case.get('name'))
            # pytest gives its reason as an attribute, Swift Testing as the element's text.
            yield test, kind, outcome.get('message') or (outcome.text or '').strip()


def main(paths) -> int:
    if not paths:
        print('usage: count_skips.py REPORT.xml...', file=sys.stderr)
        return 2
    files = {path: report_files(Path(path)) for path in paths}
    missing = [path for path in paths if not files[path]]
    empty = [path for path in paths if files[path] and not sum(len(cases(f)) for f in files[path])]
    found = [s for path in paths for f in files[path] for s in skips(f)]
    unexplained = [s for s in found if s[0] not in ALLOWED]
    for test, kind, reason in found:
        print('%s %s: %s%s' % (kind, test, reason, '' if test in ALLOWED else '  [not on the allow-list]'))
    for path in missing:
        print('no report %s: that suite did not run' % path)
    for path in empty:
        print('no test in %s: that suite ran nothing' % path)
    counts = (len(paths) - len(missing), len(found), len(unexplained), len(empty))
    print('%d reports, %d skipped or xfailed, %d unexplained, %d with no test' % counts)
    return 1 if unexplained or missing or empty else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
