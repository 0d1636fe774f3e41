"""noderails_sim: a local NodeRails (REST API, hosted checkout, signed webhooks) for tests.

    from noderails_sim import Simulator
    sim = Simulator(credentials={'app_live': 'key_live'}, webhook_url='http://127.0.0.1:8000/org/event/noderails/webhook/',
                    webhook_secret='whsec_live')
    base_url = sim.start()
    ...
    sim.stop()
"""

from .server import (
    API_ROUTES,
    Delivery,
    Fault,
    QueuedWebhook,
    RecordedRequest,
    Simulator,
    http_webhook_sender,
)
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature, signed_headers

__all__ = [
    'API_ROUTES', 'Delivery', 'Fault', 'QueuedWebhook', 'RecordedRequest', 'Simulator', 'http_webhook_sender',
    'SIGNATURE_HEADER', 'TIMESTAMP_HEADER', 'compute_signature', 'signed_headers',
]
__version__ = '0.1.0'
