"""<% package.name %>: NodeRails crypto payments for pretix.

Deliberately tiny: the unit tests import the Django-free modules of this package
(conf, client, events, webhook) without pretix or Django installed.
"""

from .conf import VERSION as __version__  # noqa: F401 - pretix and pip read it here
