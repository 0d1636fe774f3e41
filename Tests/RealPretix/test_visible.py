"""What customers and organisers see around a crypto payment, in a real pretix: the order page,
the backend payment panel, the order search, the order e-mail, the invoice, and a payment
canceled in pretix whose capture still arrives."""

import html
import re
from decimal import Decimal

import pytest
from realpretix import EVENT, ORG, Customer, age_for_reconciliation, plugin, run_periodic_tasks
from django.core import mail
from django_scopes import scopes_disabled

pytestmark = pytest.mark.django_db

BASE = 8453  # in the plugin's built-in chain table
UNKNOWN_CHAIN = 990099  # in no table


def _reload(*objects):
    with scopes_disabled():
        for obj in objects:
            obj.refresh_from_db()


def _pay(customer, sim, chain_id, tx_hash=None, locale=None):
    """A customer places an order while the checkout is open, then NodeRails reports the capture.
    Returns (order, payment, session id, tx hash)."""
    if locale:
        customer.client.get('/locale/set', {'locale': locale, 'next': '/%s/%s/' % (ORG, EVENT)})
    order, payment, sid = customer.pending_order()
    sim.mark_paid(sid, chain_id=chain_id, tx_hash=tx_hash, webhook=True)
    _reload(order, payment)
    assert order.status == 'p' and payment.state == 'confirmed', (order.status, payment.state)
    return order, payment, sid, payment.info_data['tx_hash']


def _order_page(customer, order):
    r = customer.client.get('/%s/%s/order/%s/%s/' % (ORG, EVENT, order.code, order.secret))
    assert r.status_code == 200
    return r.content.decode()


def _control_page(admin, order):
    r = admin.get('/control/event/%s/%s/orders/%s/' % (ORG, EVENT, order.code))
    assert r.status_code == 200
    return r.content.decode()


def _links_to(page, url):
    return 'href="%s"' % html.escape(url) in page


# -- order page and backend panel ------------------------------------------------------------------


def test_order_page_and_backend_link_the_transaction_on_a_known_chain(customer, sim, admin):
    order, payment, sid, tx_hash = _pay(customer, sim, BASE)
    explorer = 'https://basescan.org/tx/' + tx_hash
    page = _order_page(customer, order)
    assert _links_to(page, explorer), 'no explorer link on the order page'
    assert '<dd>Base</dd>' in page
    assert '$12.50' in page  # amount and currency NodeRails reported
    panel = _control_page(admin, order)
    assert _links_to(panel, explorer), 'no explorer link in the backend payment panel'
    assert payment.info_data['payment_intent_id'] in panel and sid in panel
    assert 'Base (Chain ID %d)' % BASE in panel


def test_unknown_chain_shows_the_hash_without_a_link(customer, sim, admin):
    order, payment, sid, tx_hash = _pay(customer, sim, UNKNOWN_CHAIN)
    for page in (_order_page(customer, order), _control_page(admin, order)):
        assert '<code class="noderails-tx">%s</code>' % tx_hash in page
        assert not re.search(r'href="[^"]*%s' % tx_hash, page), 'a link for a chain without an explorer'
        assert 'Chain %d' % UNKNOWN_CHAIN in page


def test_config_chains_extend_the_built_in_table(customer, sim, monkeypatch):
    """[noderails.chains] renders into texts.CHAIN_NAMES / CHAIN_EXPLORERS; set as a render would."""
    chains = plugin('chains')
    monkeypatch.setattr(chains, 'CHAIN_NAMES', {str(UNKNOWN_CHAIN): 'Forge <i>Chain</i> & "Co"',
                                                str(BASE): 'Base (organiser)'})
    monkeypatch.setattr(chains, 'CHAIN_EXPLORERS', {str(UNKNOWN_CHAIN): 'https://explorer.example/tx/{hash}?x=1&y=2',
                                                    str(BASE): ''})
    order, _payment, _sid, tx_hash = _pay(customer, sim, UNKNOWN_CHAIN)
    page = _order_page(customer, order)
    assert '<dd>Forge &lt;i&gt;Chain&lt;/i&gt; &amp; &quot;Co&quot;</dd>' in page
    assert _links_to(page, 'https://explorer.example/tx/%s?x=1&y=2' % tx_hash)
    assert '&amp;y=2' in page  # escaped in the attribute
    other = _pay(Customer(customer.shop), sim, BASE)
    page = _order_page(customer, other[0])
    assert '<dd>Base (organiser)</dd>' in page and 'basescan.org' not in page


def test_hostile_transaction_hash_is_escaped_and_encoded(customer, sim):
    hostile = '0x"><script>alert(1)</script>/../?a=b#c'
    order, _payment, _sid, _tx = _pay(customer, sim, BASE, tx_hash=hostile)
    page = _order_page(customer, order)
    assert '<script>alert(1)' not in page
    encoded = '0x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%2F..%2F%3Fa%3Db%23c'
    assert _links_to(page, 'https://basescan.org/tx/' + encoded)


# -- backend search and export ids ------------------------------------------------------------------


def _search(admin, query):
    r = admin.get('/control/event/%s/%s/orders/' % (ORG, EVENT), {'query': query})
    assert r.status_code == 200
    return r.content.decode()


def test_order_search_finds_the_order_by_transaction_hash_intent_and_session(customer, sim, admin):
    order, payment, sid, tx_hash = _pay(customer, sim, BASE)
    other, *_ = _pay(Customer(customer.shop), sim, BASE)
    for query in (tx_hash, tx_hash.upper(), payment.info_data['payment_intent_id'], sid):
        page = _search(admin, query)
        assert order.code in page, query
        assert other.code not in page, query
    assert order.code not in _search(admin, '0x' + 'ab' * 32)
    # pretix's search across all events too: the signal is sent without an event there.
    r = admin.get('/control/search/orders/', {'query': tx_hash})
    assert r.status_code == 200 and order.code in r.content.decode()


def test_payments_and_refunds_export_carries_the_noderails_ids(customer, sim):
    import json

    from pretix.base.exporters.orderlist import PaymentListExporter

    order, payment, _sid, _tx = _pay(customer, sim, BASE)
    with scopes_disabled():
        payment.create_external_refund(amount=Decimal('2.00'), info=json.dumps({'refund_id': 'rf_forge_1'}))
        exporter = PaymentListExporter(event=customer.shop.event, organizer=customer.shop.organizer)
        header, *rows = list(exporter.iterate_list({'payment_states': ['confirmed'], 'refund_states': ['external']}))
    column = header.index('Matching ID')
    ids = sorted(row[column] for row in rows if len(row) == len(header))  # the last rows are totals
    assert ids == sorted([payment.info_data['payment_intent_id'], 'rf_forge_1']), rows


# -- the order e-mail --------------------------------------------------------------------------------


@pytest.mark.parametrize('locale, expected', [
    ('en', 'it is being confirmed now'),
    ('de', 'wird sie gerade bestätigt'),
    ('de-informal', 'kannst du auf deiner Bestellseite erneut bezahlen'),
    ('fr', 'est en cours de confirmation'),
])
def test_order_email_says_the_payment_is_being_confirmed(customer, sim, monkeypatch, locale, expected):
    # A language the organiser's [branding] texts add (rendered into texts.py, set as a render would).
    payment_module = plugin('payment')
    monkeypatch.setattr(payment_module, 'PENDING_EMAIL_TEXT', dict(
        payment_module.PENDING_EMAIL_TEXT, fr='Votre paiement est en cours de confirmation : {order_url}'))
    customer.shop.event.settings.set('locales', ['en', 'de', 'de-informal', 'fr'])
    customer.client.get('/locale/set', {'locale': locale, 'next': '/%s/%s/' % (ORG, EVENT)})
    mail.outbox.clear()
    order, _payment, _sid = customer.pending_order()
    assert order.locale == locale
    [placed] = [m for m in mail.outbox if m.to == ['buyer@example.org']]
    body = placed.body
    assert expected in body, body
    assert '/%s/%s/order/%s/%s/' % (ORG, EVENT, order.code, order.secret) in body


# -- the invoice -------------------------------------------------------------------------------------


@pytest.mark.parametrize('locale, expected', [
    ('en', 'Paid with Pay with crypto on Base. Transaction hash: '),
    ('de', 'Bezahlt mit Pay with crypto im Netzwerk Base. Transaktions-Hash: '),
])
def test_invoice_of_a_paid_order_carries_the_payment_note(customer, sim, locale, expected):
    settings = customer.shop.event.settings
    settings.set('locales', ['en', 'de'])
    settings.set('invoice_generate', 'paid')
    settings.set('invoice_address_from', 'Forge Org, 1 Main St')
    order, _payment, _sid, tx_hash = _pay(customer, sim, BASE, locale=locale)
    with scopes_disabled():
        invoice = order.invoices.get()
    assert expected + tx_hash in invoice.payment_provider_text, invoice.payment_provider_text


# -- canceled in pretix, captured later -------------------------------------------------------------------


def test_cancel_closes_the_payment_and_a_late_capture_is_money_to_refund(customer, sim, admin):
    from pretix.base.services.orders import cancel_order

    order, payment, sid = customer.pending_order()
    assert payment.state == 'pending'
    cancel_order(order.pk)
    _reload(order, payment)
    assert order.status == 'c' and payment.state == 'canceled'
    # Polling stops: the reconciliation no longer asks NodeRails, nor does the checkout page.
    age_for_reconciliation(payment)
    asked = len(sim.requests_for('get_session'))
    run_periodic_tasks()
    r = customer.client.get('/%s/%s/%s/status/' % (ORG, EVENT, plugin('conf').WEBHOOK_PATH))
    assert r.status_code == 404 and r.json()['status'] == 'CANCELED'
    assert len(sim.requests_for('get_session')) == asked
    # The customer paid in the wallet anyway: the capture is kept, and shown as money to refund.
    sim.mark_paid(sid, chain_id=BASE)
    [delivery] = sim.deliver('payment.captured', sid, times=1)
    assert delivery.status == 200, delivery.response_body
    _reload(order, payment)
    assert payment.state == 'confirmed' and order.status == 'c'
    with scopes_disabled():
        assert order.payment_refund_sum == Decimal('12.50')
    assert 'basescan.org/tx/' + payment.info_data['tx_hash'] in _control_page(admin, order)
