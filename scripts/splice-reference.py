#!/usr/bin/env python3
"""Replace the README's config reference (between its two marker comments) with stdin:
`pretix-forge reference | scripts/splice-reference.py README.md`."""

import sys
from pathlib import Path

BEGIN = '<!-- config-reference:'
END = '<!-- end of config-reference -->'


def main(path):
    readme = Path(path)
    text = readme.read_text(encoding='utf-8')
    start = text.index('\n', text.index(BEGIN)) + 1
    end = text.index(END)
    readme.write_text(text[:start] + sys.stdin.read() + text[end:], encoding='utf-8')


if __name__ == '__main__':
    main(sys.argv[1])
