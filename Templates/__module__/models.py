from django.db import models


class NodeRailsReference(models.Model):
    """Maps a NodeRails id (checkout session or payment intent) to the pretix payment.

    ``reference`` is unique, so one paid NodeRails session can never pay two orders.
    """

    reference = models.CharField(max_length=190, db_index=True, unique=True)
    # No reverse accessors: two variants of this plugin (same model names, different
    # modules) would both claim Order.noderailsreference_set and fail Django's checks.
    order = models.ForeignKey('pretixbase.Order', on_delete=models.CASCADE, related_name='+')
    payment = models.ForeignKey('pretixbase.OrderPayment', null=True, blank=True, on_delete=models.CASCADE,
                                related_name='+')


class ProcessedWebhookEvent(models.Model):
    """A webhook event whose effect has been applied.

    Written in the same transaction as the effect: if confirming fails (lock timeout),
    the row rolls back with it and NodeRails' retry is processed again.
    """

    event_id = models.CharField(max_length=190, unique=True)
    # Named pretix_event because event_id is NodeRails' event id.
    pretix_event = models.ForeignKey('pretixbase.Event', on_delete=models.CASCADE, related_name='+')
    event_type = models.CharField(max_length=190)
    processed = models.DateTimeField(auto_now_add=True)
