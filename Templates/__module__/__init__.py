"""<% package.name %>: NodeRails crypto payments for pretix.

Deliberately tiny: the unit tests import the Django-free modules of this package
(client, events, webhook) without pretix or Django installed.
"""

__version__ = '<% package.version %>'
