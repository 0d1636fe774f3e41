"""pretix-noderails: NodeRails crypto payments for pretix.

Deliberately tiny: the unit tests import the Django-free modules of this package
(client, events, webhook) without pretix or Django installed.
"""

__version__ = '1.0.0'
