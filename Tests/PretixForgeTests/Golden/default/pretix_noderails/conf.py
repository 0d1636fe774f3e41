"""Every value rendered from the forge config that is not organiser text (texts.py has those).

The other modules import these names instead of being templated themselves, so every variant
of the plugin runs the same, tested source; only this file and texts.py differ between them.
Organisers may override the URLs and the currency per event in pretix; these are the defaults.

No imports: the unit tests load this module without Django, and webhook.py's callers pass the
signature settings from here.
"""

# The Python package, also the Django app label, URL namespace and template/static folder.
MODULE = 'pretix_noderails'
DISTRIBUTION = 'pretix-noderails'
VERSION = '1.0.0'
PRETIX_MIN_VERSION = '2024.7.0'

# pretix payment provider identifier: settings keys are payment_<IDENTIFIER>_*.
IDENTIFIER = 'noderails'
# /<organizer>/<event>/<WEBHOOK_PATH>/webhook/ and .../status/
WEBHOOK_PATH = 'noderails'

API_BASE_URL = 'https://api.noderails.com'
API_ORIGIN = 'https://api.noderails.com'
PAYMENT_UI_URL = 'https://pay.noderails.com'
PAYMENT_UI_ORIGIN = 'https://pay.noderails.com'
CURRENCY = 'USD'

# How often the confirm page asks whether the payment arrived.
POLL_INTERVAL_SECONDS = 3
# Deadline of every call to NodeRails, from connecting to the last byte of the answer.
HTTP_TIMEOUT_SECONDS = 10

# What the webhook signature covers ('timestamp.body' or 'body'), the unit of its timestamp
# header ('ms' or 's') and how far that timestamp may be from the server clock.
SIGNATURE_PAYLOAD = 'timestamp.body'
TIMESTAMP_UNIT = 'ms'
TOLERANCE_SECONDS = 300

# The NodeRails events that confirm a payment ([webhook] confirm_on): 'captured' (funds taken
# from the wallet) always; 'authorized' (the customer's approval) only when listed.
CONFIRM_ON = ('authorized', 'captured')
