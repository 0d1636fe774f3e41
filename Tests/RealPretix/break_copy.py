"""Render the plugin into a folder and break one money rule in that copy, to show that the ledger
machine (ledger_machine.py), or the cluster suite (Tests/Cluster, the breaks marked so), catches it:

    python3 Tests/RealPretix/break_copy.py BREAK OUT
    REALPRETIX_SRC=OUT make test-ledger PREPARED=1      # must fail, printing the shrunk steps

OUT is rendered from Templates/ by the debug build (.build/debug/pretix-forge) and put first on
PYTHONPATH by run.sh (REALPRETIX_SRC), shadowing the installed sdist. Templates/ is never touched.
BREAK is one of the names below; each replaces one exact piece of code (or several, in order),
and fails loudly when that code has changed so the break would no longer apply.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = 'pretix_noderails'

BREAKS = {
    # Each webhook event id processed once: without the record, every redelivery acts again.
    'dedupe': ('views.py', '''    try:
        with transaction.atomic():
            ProcessedWebhookEvent.objects.create(''', '''    return True  # BREAK: event-id dedupe removed
    try:
        with transaction.atomic():
            ProcessedWebhookEvent.objects.create('''),
    # NodeRails' amount and currency must equal the payment's before it is confirmed.
    'amount': ('settlement.py',
               '''    """Why NodeRails' amount/currency cannot confirm ``payment``; None when they match."""
''', '''    """Why NodeRails' amount/currency cannot confirm ``payment``; None when they match."""
    return None  # BREAK: the amount check skipped
'''),
    # A paid checkout that never became an order is refunded by the periodic task.
    'unclaimed': ('signals.py', '''def _refund_unclaimed_checkouts():
''', '''def _refund_unclaimed_checkouts():
    return  # BREAK: the unclaimed refund never runs
'''),
    # A re-sent refund carries the same Idempotency-Key, so NodeRails makes it once.
    'refund-key': ('settlement.py',
                   '''    return '%s:refund:%s:%s' % (MODULE, intent_id, refund.full_id)''',
                   '''    import uuid  # BREAK: the refund key made random
    return '%s:refund:%s:%s' % (MODULE, intent_id, uuid.uuid4())'''),
    # Tests/Cluster: the status cache and rate limit live in pretix's shared cache (redis).
    'rate-limit-per-process': ('views.py',
                               '''    return _PROCESS_CACHE if isinstance(shared, DummyCache) else shared''',
                               '''    return _PROCESS_CACHE  # BREAK: per process, not shared'''),
    # Tests/Cluster: one periodic run at a time refunds an unclaimed checkout (its lease).
    'refund-lease': ('unclaimed.py',
                     '''        if checkout.refund_lease_until is not None and checkout.refund_lease_until > now():
            return None
''', '''        # BREAK: the refund call is made outside the lease, whoever holds it
'''),
    # Tests/Cluster: the checkout is bound to the new order where the order is created (celery).
    'bind-in-celery': ('signals.py', '''    session_id = order.meta_info_data.get(ORDER_META_KEY)
''', '''    return  # BREAK: left to the browser's pay/complete
'''),
    # Tests/Cluster: a delivery behind another transaction's row lock gives up in time (503, redelivered),
    # before NodeRails' and gunicorn's timeouts.
    'no-lock-timeout': ('views.py', '''            cursor.execute("SET LOCAL lock_timeout = '%ds'" % LOCK_WAIT_SECONDS)
''', '''            pass  # BREAK: lock waits unbounded
'''),
    # Tests/Cluster: an event id is recorded as processed in the transaction that does its work, so
    # a delivery that fails half-way (redis gone) is processed afresh when NodeRails redelivers it.
    'claim-before-work': [
        ('views.py', '''    return _locked(_apply, request.event, event, ref)
''', '''    # BREAK: the event id committed as processed before, and apart from, its work
    if not _claim(request.event, event):
        return _text('Duplicate event, already processed')
    return _locked(_apply, request.event, event, ref)
'''),
        ('views.py', '''def _apply(pretix_event, event, ref):
    if not _claim(pretix_event, event):
        return _text('Duplicate event, already processed')
''', '''def _apply(pretix_event, event, ref):
'''),
    ],
}


def main(argv):
    if len(argv) != 2 or argv[0] not in BREAKS:
        sys.exit('usage: break_copy.py {%s} OUT' % ','.join(BREAKS))
    name, out = argv[0], Path(argv[1])
    forge = str(ROOT / '.build/debug/pretix-forge')
    subprocess.run([forge, 'generate', '--templates', str(ROOT / 'Templates'), '--out', str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    edits = BREAKS[name] if isinstance(BREAKS[name], list) else [BREAKS[name]]
    for filename, old, new in edits:
        path = out / MODULE / filename
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit('break %r: the code it replaces is no longer in %s exactly once' % (name, filename))
        path.write_text(text.replace(old, new))
    print('%s broken (%s) in %s' % (MODULE, name, out))


if __name__ == '__main__':
    main(sys.argv[1:])
