#!/usr/bin/env python3
"""Fail `make test` on any skipped or xfailed test that is not on ALLOWED.

    count_skips.py REPORT.xml...

Each argument is the JUnit XML one pytest run of `make test` wrote (--junitxml). A report that is
missing fails too: a suite that never ran cannot prove it skipped nothing. Prints one line per
skip and xfail with its reason, then the totals.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# "<report file name>::<classname>::<test name>" -> why that test may skip in `make test`.
# Empty: every suite runs every test; a new entry needs a reason a reviewer accepts.
ALLOWED = {}


def skips(report: Path):
    """(test id, kind, reason) for every skipped or xfailed test case in one report."""
    for case in ET.parse(report).getroot().iter('testcase'):
        for outcome in case.findall('skipped'):
            kind = 'xfail' if outcome.get('type') == 'pytest.xfail' else 'skip'
            test = '%s::%s::%s' % (report.name, case.get('classname'), case.get('name'))
            yield test, kind, outcome.get('message') or ''


def main(paths) -> int:
    if not paths:
        print('usage: count_skips.py REPORT.xml...', file=sys.stderr)
        return 2
    missing = [p for p in paths if not Path(p).is_file()]
    found = [s for p in paths if Path(p).is_file() for s in skips(Path(p))]
    unexplained = [s for s in found if s[0] not in ALLOWED]
    for test, kind, reason in found:
        print('%s %s: %s%s' % (kind, test, reason, '' if test in ALLOWED else '  [not on the allow-list]'))
    for path in missing:
        print('no report %s: that suite did not run' % path)
    counts = (len(paths) - len(missing), len(found), len(unexplained))
    print('%d reports, %d skipped or xfailed, %d unexplained' % counts)
    return 1 if unexplained or missing else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
