"""Organiser-controlled texts, rendered from the forge config.

They live in this one module because their length is the organiser's: setup.cfg exempts
it from the line-length rule, and the other modules import the names from here. The
customer-facing texts are dicts (language code -> text) for pretix's LazyI18nString,
which picks the customer's language and falls back to English.

No imports: the unit tests load this module without Django.
"""

VERBOSE_NAME = <% py(provider.verbose_name) %>
PUBLIC_NAME = <% py(provider.public_name) %>
SUMMARY = <% py(package.summary) %>
AUTHOR = <% py(package.author) %>

PAYMENT_DESCRIPTION = <% py(branding.payment_description) %>
CONFIRM_HEADING = <% py(branding.confirm_heading) %>
CONFIRM_INSTRUCTIONS = <% py(branding.confirm_instructions) %>
WAITING_MESSAGE = <% py(branding.waiting_message) %>
SUCCESS_MESSAGE = <% py(branding.success_message) %>
FAILURE_MESSAGE = <% py(branding.failure_message) %>
# The order e-mail's note while the payment is being confirmed; {order_url} is filled in.
PENDING_EMAIL_TEXT = <% py(branding.pending_email_text) %>
# The payment note on a paid order's invoice; {method}, {network} and {tx_hash} are filled in.
INVOICE_TEXT = <% py(branding.invoice_text) %>

# File name of the organiser's logo in this plugin's static folder; empty when it has none.
LOGO_FILE = '<% branding.logo_file %>'
# What the logo shows, read out to customers who cannot see it; empty without a logo.
LOGO_ALT = <% py(branding.logo_alt) %>

# [noderails.chains], keyed by chain id as a string: the network name people see, and the
# explorer URL of a transaction ('{hash}' replaced by its hash; '' for no link). chains.py
# lays them over its built-in table.
CHAIN_NAMES = <% py(noderails.chain_names) %>
CHAIN_EXPLORERS = <% py(noderails.chain_explorers) %>
