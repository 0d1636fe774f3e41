import re

from django.urls import include, re_path
from pretix.multidomain import event_url

from .conf import WEBHOOK_PATH
from .views import refund_held, status, webhook

event_patterns = [
    re_path(r'^' + re.escape(WEBHOOK_PATH) + '/', include([
        # NodeRails must reach the webhook even while the shop is offline or in test mode.
        event_url(r'^webhook/$', webhook, name='webhook', require_live=False),
        # Polled from the confirm page; test-mode checkouts of non-live shops poll it too.
        event_url(r'^status/$', status, name='status', require_live=False),
    ])),
]

urlpatterns = [
    # The organiser's one-click refund of money held for a failed payment (control.html).
    re_path(r'^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/' + re.escape(WEBHOOK_PATH)
            + r'/payments/(?P<payment>[0-9]+)/refund-held/$', refund_held, name='refund_held'),
]
