"""What differs between the pretix releases the plugin supports, each behind a feature check.

The plugin claims every pretix from its pretix_min_version on; where an older release lacks a
helper or an argument the newest one has, the difference is absorbed here, once.
"""

import inspect

from pretix.base import middleware
from pretix.base.services.cart import get_fees
from pretix.control import permissions

# The permission to change an event's orders: named by scope in newer pretix, by flag in older.
ORDERS_WRITE_PERMISSION = (
    'event.orders:write' if hasattr(permissions, 'assert_valid_event_permission') else 'can_change_orders')


def add_to_response_csp(response, directives):
    """Merges CSP directives into the policy the response carries.

    pretix's SecurityMiddleware merges that policy into its own. Newer pretix has a helper for
    it; older pretix has only the parse, merge and render steps the helper is made of.
    """
    if hasattr(middleware, 'add_to_response_csp'):
        middleware.add_to_response_csp(response, directives)
        return
    header = response.get('Content-Security-Policy')
    policy = middleware._parse_csp(header) if header else {}
    middleware._merge_csp(policy, directives)
    if policy:
        response['Content-Security-Policy'] = middleware._render_csp(policy)


def get_cart_fees(event, request, invoice_address, payments, positions):
    """pretix's fees for a cart; older pretix needs the positions' total passed in as well."""
    extra = {}
    if 'total' in inspect.signature(get_fees).parameters:
        extra['total'] = sum(p.price for p in positions)
    return get_fees(event=event, request=request, invoice_address=invoice_address, payments=payments,
                    positions=positions, **extra)


def price_before_rounding(position):
    """A cart position's price before pretix's rounding correction (older pretix has none)."""
    return position.price - getattr(position, 'price_includes_rounding_correction', 0)


def payment_settings_permission() -> str:
    """The team permission to change an event's payment settings.

    Newer pretix names fine-grained permissions; older pretix has one flag per team.
    """
    from pretix.base.models import Team
    if 'can_change_event_settings' in {field.name for field in Team._meta.get_fields()}:
        return 'can_change_event_settings'
    return 'event.settings.payment:write'
