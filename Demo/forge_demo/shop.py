"""The throwaway shop: database, organiser with a backend login, a live event in the variant's
currency with two ticket types, and the plugin enabled against the simulator."""

import secrets
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

ORGANIZER_SLUG, EVENT_SLUG = 'demo', 'shop'
ADMIN_EMAIL = 'admin@example.org'
# Whole amounts: valid in every currency, including those without minor units (JPY, KRW).
TICKETS = (
    ({'en': 'Regular ticket', 'de': 'Normales Ticket'}, Decimal('25')),
    ({'en': 'Reduced ticket', 'de': 'Ermäßigtes Ticket'}, Decimal('15')),
)
DEMO_BANK_DETAILS = 'Demo Bank, IBAN DE00 0000 0000 0000 0000 00'


def create_tables():
    from django.core.management import call_command
    call_command('migrate', run_syncdb=True, interactive=False, verbosity=0)


def pretix_languages(requested):
    """The config's languages that pretix offers, in the config's order, English first."""
    from django.conf import settings
    known = {code for code, _name in settings.LANGUAGES}
    ordered = ['en'] + [code for code in requested if code != 'en']
    return [code for code in ordered if code in known]


def create_shop(spec):
    from django.utils.timezone import now
    from django_scopes import scopes_disabled
    from pretix.base.models import Event, Organizer, User

    package = spec['package']
    with scopes_disabled():
        organizer = Organizer.objects.create(name='Demo Organizer', slug=ORGANIZER_SLUG)
        organizer.enable_plugin('pretix.plugins.banktransfer')  # an organiser-level plugin as well
        organizer.save()
        event = Event.objects.create(
            organizer=organizer, name='%s %s demo' % (package['name'], package['version']), slug=EVENT_SLUG,
            currency=spec['currency'], live=True, date_from=now() + timedelta(days=30),
            plugins='pretix.plugins.banktransfer',
        )
        event.enable_plugin(package['module'])
        event.save()
        quota = event.quotas.create(name='Tickets', size=100)
        items = []
        for name, price in TICKETS:
            item = event.items.create(name=name, default_price=price, admission=True, active=True)
            quota.items.add(item)
            items.append(item)
        _event_settings(event, spec)
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_user(ADMIN_EMAIL, password)
        team = organizer.teams.create(name='Demo administrators', all_events=True, all_event_permissions=True,
                                      all_organizer_permissions=True)
        team.members.add(admin)
    return SimpleNamespace(organizer=organizer, event=event, items=items, admin_email=ADMIN_EMAIL,
                           admin_password=password, path='/%s/%s/' % (ORGANIZER_SLUG, EVENT_SLUG))


def _event_settings(event, spec):
    s = event.settings
    s.set('locales', pretix_languages(spec['languages']))
    s.set('locale', 'en')
    s.set('attendee_names_asked', False)
    s.set('invoice_address_asked', False)
    s.set('payment_term_days', 3)
    # Tickets, calendar files and invoices are not what the demo is about; rendering their
    # PDFs would cost seconds per order.
    s.set('mail_attach_tickets', False)
    s.set('mail_attach_ical', False)
    s.set('invoice_generate', 'False')
    # A second method, as in most shops: the payment step shows the variant among others.
    s.set('payment_banktransfer__enabled', True)
    s.set('payment_banktransfer_bank_details_type', 'other')
    s.set('payment_banktransfer_bank_details', DEMO_BANK_DETAILS)


def enable_provider(shop, spec, simulator):
    """What an organiser enters under Settings → Payment, with the simulator's URLs and credentials."""
    values = {
        '_enabled': True, 'api_base_url': simulator.api_url, 'payment_ui_url': simulator.ui_url,
        'app_id': simulator.app_id, 'api_key': simulator.api_key, 'webhook_secret': simulator.webhook_secret,
    }
    for key, value in values.items():
        shop.event.settings.set('payment_%s_%s' % (spec['provider']['identifier'], key), value)


def webhook_path(spec):
    return '/%s/%s/%s/webhook/' % (ORGANIZER_SLUG, EVENT_SLUG, spec['provider']['webhook_path'])
