#!/usr/bin/env python3
"""Webhook load test: a burst of signed NodeRails deliveries against pretix on PostgreSQL.

    PRETIX_VENV/bin/python scripts/bench_webhooks.py [--payments 300] [--forged 100] [--deliveries 2000]
                                                     [--seconds 60] [--concurrency 12] [--workers 3] [--cluster]

Runs in a venv with pretix and the plugin installed (like the real-pretix suite). Starts a
throwaway PostgreSQL on 127.0.0.1 (or uses the one of Tests/Production/with_postgres.py), a
migrated pretix, the NodeRails simulator and --workers pretix web worker processes, then POSTs a
shuffled mix to all workers at once:

  new        payment.captured for each of --payments paid orders
  duplicate  the same event again, twice (NodeRails sends each webhook up to three times)
  forged     for --forged other (unpaid) orders: wrong secret, wrong signature, stale replay

Bounded: stops after --deliveries requests or --seconds, whichever comes first, and stops every
server it started. Prints throughput and latency, then checks the invariants in the database:
no payment confirmed twice, no forged delivery accepted, no valid delivery lost. Exit status 1
if an invariant broke.

--cluster sends the same load to pretix as its deployment guide runs it (Tests/Cluster/cluster.py:
gunicorn with 3 workers, 2 celery workers, redis as cache, session store and broker) instead.
"""

import argparse
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'Tests', 'Production'))
sys.path.insert(0, os.path.join(ROOT, 'Tests', 'Cluster'))

import harness  # noqa: E402

FORGERIES = ('wrong_secret', 'wrong_signature', 'stale_replay')
# NodeRails redelivers a 503 (lock timeout); so does the bench, a few times.
RETRIES_ON_503 = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--payments', type=int, default=300, help='paid orders, one new delivery each')
    parser.add_argument('--duplicates', type=int, default=2, help='extra copies of each valid delivery')
    parser.add_argument('--forged', type=int, default=100, help='unpaid orders that only get forged deliveries')
    parser.add_argument('--deliveries', type=int, default=2000, help='stop after this many requests')
    parser.add_argument('--seconds', type=float, default=60, help='stop sending after this long')
    parser.add_argument('--concurrency', type=int, default=12)
    parser.add_argument('--workers', type=int, default=3, help='pretix web worker processes')
    parser.add_argument('--seed', type=int, default=8)
    parser.add_argument('--cluster', action='store_true', help='gunicorn, celery and redis (Tests/Cluster)')
    return parser.parse_args(argv)


class Plan:
    def __init__(self, args, stack):
        self.paid, self.forged_only, self.items = [], [], []
        for _ in range(args.payments):
            order, payment, sid = stack.pending_order()
            stack.sim.mark_paid(sid)
            document = stack.sim.build_event('payment.captured', sid)
            self.paid.append((order, payment, sid))
            self.items += [('new', sid, document, None)] + [('duplicate', sid, document, None)] * args.duplicates
        for index in range(args.forged):
            order, payment, sid = stack.pending_order()
            document = stack.sim.build_event('payment.captured', sid)
            self.forged_only.append((order, payment, sid))
            self.items.append(('forged', sid, document, FORGERIES[index % len(FORGERIES)]))
        random.Random(args.seed).shuffle(self.items)
        self.items = self.items[:args.deliveries]


def forgery_kwargs(kind):
    if kind == 'wrong_secret':
        return {'secret': 'whsec_NOT_THE_SECRET'}
    if kind == 'wrong_signature':
        return {'signature': 'ab' * 32}
    return {'timestamp_offset': -3600}  # a captured delivery replayed an hour later


class Runner:
    def __init__(self, stack, plan, args):
        self.stack, self.plan, self.args = stack, plan, args
        self.results = []  # (kind, sid, status or error, latency seconds, attempts)
        self.lock = threading.Lock()
        self.deadline = None

    def send(self, index):
        if time.monotonic() > self.deadline:
            return
        kind, sid, document, forgery = self.plan.items[index]
        url = webhook_url(self.stack, index)
        extra = forgery_kwargs(forgery) if forgery else {}
        for attempt in range(1, RETRIES_ON_503 + 2):
            started = time.monotonic()
            delivery = self.stack.sim.deliver('payment.captured', sid, document=document, times=1, url=url, **extra)[0]
            latency = time.monotonic() - started
            with self.lock:
                self.results.append((kind, sid, delivery.status or delivery.error, latency, attempt))
            if delivery.status != 503:
                return
            time.sleep(0.5)

    def run(self):
        started = time.monotonic()
        self.deadline = started + self.args.seconds
        with ThreadPoolExecutor(self.args.concurrency) as pool:
            list(pool.map(self.send, range(len(self.plan.items))))
        return time.monotonic() - started


def webhook_url(stack, index):
    """The cluster's gunicorn spreads deliveries over its workers itself; single workers are taken in turn."""
    if not stack.workers:
        return stack.webhook_url
    return stack.workers[index % len(stack.workers)].webhook_url


def check_invariants(stack, plan, results):
    from django.db.models import Count
    from django_scopes import scopes_disabled
    from pretix.base.models import LogEntry, OrderPayment

    sent_valid = {sid for kind, sid, _s, _l, _a in results if kind != 'forged'}
    forged_answers = [status for kind, _sid, status, _l, _a in results if kind == 'forged']
    final_valid = {}
    for kind, sid, status, _l, _a in results:
        if kind != 'forged':
            final_valid[(kind, sid)] = status
    with scopes_disabled():
        orders = [o.pk for o, _p, _s in plan.paid + plan.forged_only]
        twice = (LogEntry.objects.filter(object_id__in=orders, action_type=harness.CONFIRMED_ACTION)
                 .values('object_id').annotate(n=Count('id')).filter(n__gt=1).count())
        paid_twice = (LogEntry.objects.filter(object_id__in=orders, action_type=harness.PAID_ACTION)
                      .values('object_id').annotate(n=Count('id')).filter(n__gt=1).count())
        forged_changed = OrderPayment.objects.filter(
            pk__in=[p.pk for _o, p, _s in plan.forged_only]).exclude(state='pending').count()
        lost = [sid for o, p, sid in plan.paid if sid in sent_valid
                and not OrderPayment.objects.filter(pk=p.pk, state='confirmed', order__status='p').exists()]
    not_2xx = [s for s in final_valid.values() if not (isinstance(s, int) and 200 <= s < 300)]
    return [
        ('no payment confirmed twice', twice == 0 and paid_twice == 0,
         '%d payments confirmed twice, %d orders paid twice' % (twice, paid_twice)),
        ('no forged delivery accepted',
         forged_changed == 0 and all(isinstance(s, int) and 400 <= s < 500 for s in forged_answers),
         '%d forged deliveries, all answered 4xx, %d unpaid payments changed' % (len(forged_answers), forged_changed)),
        ('no valid delivery lost', not lost and not not_2xx,
         '%d payments with a valid delivery, %d not confirmed; %d valid deliveries finally answered non-2xx'
         % (len(sent_valid), len(lost), len(not_2xx))),
    ]


def report(args, plan, results, wall, invariants):
    latencies = sorted(latency for _k, _s, _st, latency, _a in results)
    kinds = Counter(kind for kind, _s, _st, _l, attempt in results if attempt == 1)
    statuses = Counter(str(status) for _k, _s, status, _l, _a in results)
    retries = sum(1 for *_x, attempt in results if attempt > 1)

    def pct(p):
        return 1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else 0.0

    topology = ('gunicorn with 3 workers, 2 celery workers, redis' if args.cluster
                else '%d single-process workers' % args.workers)
    print('\nNodeRails webhook load test: pretix %s on PostgreSQL, %s, %d concurrent senders'
          % (_pretix_version(), topology, args.concurrency))
    print('  planned     %d deliveries (%d paid orders, %d forged-only orders), limits %d requests / %.0f s'
          % (len(plan.items), len(plan.paid), len(plan.forged_only), args.deliveries, args.seconds))
    print('  sent        %d requests in %.2f s: %s; %d retries after 503'
          % (len(results), wall, ', '.join('%s %d' % kv for kv in sorted(kinds.items())), retries))
    print('  answers     %s' % ', '.join('%s: %d' % kv for kv in sorted(statuses.items())))
    print('  throughput  %.1f requests/s' % (len(results) / wall if wall else 0))
    if latencies:
        print('  latency     p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms   mean %.1f ms'
              % (pct(50), pct(90), pct(99), 1000 * latencies[-1], 1000 * statistics.mean(latencies)))
    print('  invariants')
    for name, held, detail in invariants:
        print('    [%s] %s (%s)' % ('held' if held else 'BROKEN', name, detail))


def _pretix_version():
    import pretix
    return pretix.__version__


def main(argv):
    args = parse_args(argv)

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)

    if args.cluster:
        import cluster
        stack = cluster.Cluster(database='forge_bench')
    else:
        stack = harness.Stack(workers=args.workers, database='forge_bench')
    try:
        print('starting PostgreSQL, pretix and the NodeRails simulator...', flush=True)
        stack.start()
        print('creating %d + %d orders...' % (args.payments, args.forged), flush=True)
        plan = Plan(args, stack)
        runner = Runner(stack, plan, args)
        wall = runner.run()
        invariants = check_invariants(stack, plan, runner.results)
        report(args, plan, runner.results, wall, invariants)
    finally:
        stack.stop()
    return 0 if all(held for _n, held, _d in invariants) else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
