"""Every value rendered from the forge config that is not organiser text (texts.py has those).

The other modules import these names instead of being templated themselves, so every variant
of the plugin runs the same, tested source; only this file and texts.py differ between them.
Organisers may override the URLs and the currency per event in pretix; these are the defaults.

No imports: the unit tests load this module without Django, and webhook.py's callers pass the
signature settings from here.
"""

# The Python package, also the Django app label, URL namespace and template/static folder.
MODULE = '<% package.module %>'
DISTRIBUTION = '<% package.name %>'
VERSION = '<% package.version %>'
PRETIX_MIN_VERSION = '<% package.pretix_min_version %>'

# pretix payment provider identifier: settings keys are payment_<IDENTIFIER>_*.
IDENTIFIER = '<% provider.identifier %>'
# /<organizer>/<event>/<WEBHOOK_PATH>/webhook/ and .../status/
WEBHOOK_PATH = '<% provider.webhook_path %>'

API_BASE_URL = '<% noderails.api_base_url %>'
API_ORIGIN = '<% noderails.api_origin %>'
PAYMENT_UI_URL = '<% noderails.payment_ui_url %>'
PAYMENT_UI_ORIGIN = '<% noderails.payment_ui_origin %>'
CURRENCY = '<% noderails.currency %>'

# How often the confirm page asks whether the payment arrived.
POLL_INTERVAL_SECONDS = <% noderails.poll_interval_seconds %>
# Deadline of every call to NodeRails, from connecting to the last byte of the answer.
HTTP_TIMEOUT_SECONDS = <% noderails.http_timeout_seconds %>

# What the webhook signature covers ('timestamp.body' or 'body'), the unit of its timestamp
# header ('ms' or 's') and how far that timestamp may be from the server clock.
SIGNATURE_PAYLOAD = '<% webhook.signature_payload %>'
TIMESTAMP_UNIT = '<% webhook.timestamp_unit %>'
TOLERANCE_SECONDS = <% webhook.tolerance_seconds %>

# The NodeRails events that confirm a payment ([webhook] confirm_on): 'captured' (funds taken
# from the wallet) always; 'authorized' (the customer's approval) only when listed.
CONFIRM_ON = <% webhook.confirm_on %>
