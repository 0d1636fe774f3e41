"""Make the plugin package importable without installing it (any pytest version).

Deliberately no Django or pretix here: these tests cover the Django-free modules.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
