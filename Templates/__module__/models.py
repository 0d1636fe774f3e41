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


class CartCheckout(models.Model):
    """A NodeRails checkout session started for a cart, before any pretix order exists.

    Written when the session is created, so that a capture webhook for it can be told
    apart from sessions this pretix did not create: NodeRails' events carry neither the
    session's reference nor its metadata. Place order claims it; a session paid but never
    claimed is refunded by the periodic task after a grace period (unclaimed.py).
    """

    session_id = models.CharField(max_length=190, unique=True)
    # No reverse accessor, as above.
    event = models.ForeignKey('pretixbase.Event', on_delete=models.CASCADE, related_name='+')
    testmode = models.BooleanField(default=False)
    # The cart total asked for, replaced by the captured amount once NodeRails reports it.
    amount = models.DecimalField(max_digits=13, decimal_places=2)
    currency = models.CharField(max_length=10)
    state = models.CharField(max_length=16, default='started', db_index=True)
    # Indexed: payment_intent.* webhooks may name only the intent.
    payment_intent_id = models.CharField(max_length=190, blank=True, db_index=True)
    refund_id = models.CharField(max_length=190, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # When the first capture webhook arrived, and when its refund becomes due unless claimed.
    paid = models.DateTimeField(null=True, blank=True)
    refund_after = models.DateTimeField(null=True, blank=True)
    refund_attempts = models.PositiveIntegerField(default=0)
    # Until when a run of the periodic task owns this checkout's refund (unclaimed.begin_refund).
    refund_lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Asking NodeRails about a checkout still "started" (unclaimed.ask_about_started): how often it
    # was asked without a final answer, when it is asked next, and when that was reported.
    checks = models.PositiveIntegerField(default=0)
    next_check = models.DateTimeField(null=True, blank=True, db_index=True)
    unanswered_reported = models.DateTimeField(null=True, blank=True)
