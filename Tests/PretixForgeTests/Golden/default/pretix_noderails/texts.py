"""Organiser-controlled texts, rendered from the forge config.

They live in this one module because their length is the organiser's: setup.cfg exempts
it from the line-length rule, and the other modules import the names from here. The
customer-facing texts are dicts (language code -> text) for pretix's LazyI18nString,
which picks the customer's language and falls back to English.

No imports: the unit tests load this module without Django.
"""

VERBOSE_NAME = 'NodeRails Payments'
PUBLIC_NAME = 'Pay with crypto'
SUMMARY = 'Accept crypto payments in pretix through NodeRails hosted checkout.'
AUTHOR = 'NodeRails'

PAYMENT_DESCRIPTION = {'de': 'Bezahlen Sie mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; Ihre Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist.', 'de-informal': 'Bezahle mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; deine Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist.', 'en': 'Pay with cryptocurrency through NodeRails. The secure NodeRails checkout opens on the next page; your order is placed once the payment has arrived.'}
CONFIRM_HEADING = {'de': 'Schließen Sie Ihre Krypto-Zahlung ab', 'de-informal': 'Schließe deine Krypto-Zahlung ab', 'en': 'Complete your crypto payment'}
CONFIRM_INSTRUCTIONS = {'de': 'Bezahlen Sie im NodeRails-Checkout unten. Sobald Ihre Zahlung erkannt wurde, können Sie Ihre Bestellung abschließen.', 'de-informal': 'Bezahle im NodeRails-Checkout unten. Sobald deine Zahlung erkannt wurde, kannst du deine Bestellung abschließen.', 'en': 'Pay in the NodeRails checkout below. As soon as your payment is detected, you can place your order.'}
WAITING_MESSAGE = {'de': 'Warten auf Ihre Zahlung …', 'de-informal': 'Warten auf deine Zahlung …', 'en': 'Waiting for your payment…'}
SUCCESS_MESSAGE = {'de': 'Zahlung erhalten. Sie können Ihre Bestellung jetzt abschließen.', 'de-informal': 'Zahlung erhalten. Du kannst deine Bestellung jetzt abschließen.', 'en': 'Payment received. You can now place your order.'}
FAILURE_MESSAGE = {'de': 'Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuchen Sie es erneut oder wählen Sie eine andere Zahlungsart.', 'de-informal': 'Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuche es erneut oder wähle eine andere Zahlungsart.', 'en': 'The payment did not go through and you have not been charged. Please try again or choose another payment method.'}
# The order e-mail's note while the payment is being confirmed; {order_url} is filled in.
PENDING_EMAIL_TEXT = {'de': 'Wenn Sie Ihre Krypto-Zahlung abgeschlossen haben, wird sie gerade bestätigt; Sie erhalten eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, können Sie auf Ihrer Bestellseite erneut bezahlen: {order_url}', 'de-informal': 'Wenn du deine Krypto-Zahlung abgeschlossen hast, wird sie gerade bestätigt; du erhältst eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, kannst du auf deiner Bestellseite erneut bezahlen: {order_url}', 'en': 'If you have completed your crypto payment, it is being confirmed now; you will receive another e-mail as soon as it has been confirmed. If it did not go through, you can pay again on your order page: {order_url}'}
# The payment note on a paid order's invoice; {method}, {network} and {tx_hash} are filled in.
INVOICE_TEXT = {'de': 'Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}', 'de-informal': 'Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}', 'en': 'Paid with {method} on {network}. Transaction hash: {tx_hash}'}

# File name of the organiser's logo in this plugin's static folder; empty when it has none.
LOGO_FILE = ''
# What the logo shows, read out to customers who cannot see it; empty without a logo.
LOGO_ALT = {}

# [noderails.chains], keyed by chain id as a string: the network name people see, and the
# explorer URL of a transaction ('{hash}' replaced by its hash; '' for no link). chains.py
# lays them over its built-in table.
CHAIN_NAMES = {}
CHAIN_EXPLORERS = {}
