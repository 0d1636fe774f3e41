"""redis is pretix's cache, session store and celery broker: what the plugin keeps there (status
cache, rate limit) must be shared by all gunicorn workers, and losing redis must lose no payment."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db.models import Count
from django_scopes import scopes_disabled

import harness
from conftest import Browser, plugin

ORDERS = 15
COPIES = 3  # NodeRails sends each event up to three times
REDELIVERIES = 12  # NodeRails redelivers an event that was not answered 2xx


def deliver_until_accepted(cluster, session_id, document):
    """One NodeRails delivery, redelivered while it is not answered 2xx (redis down: pretix fails)."""
    for _ in range(REDELIVERIES):
        delivery = cluster.sim.deliver('payment.captured', session_id, document=document, times=1)[0]
        if delivery.status is not None and 200 <= delivery.status < 300:
            return delivery.status
        time.sleep(0.5)
    return delivery.status or delivery.error


def poll(browser, stop, answers):
    while not stop.is_set():
        try:
            r = browser.status()
            body = r.json() if r.headers.get('Content-Type', '').startswith('application/json') else {}
            answers.append((r.status_code, body.get('paid'), body.get('status')))
        except Exception as exc:  # a connection refused while gunicorn restarts nothing: recorded
            answers.append((None, None, type(exc).__name__))
        time.sleep(0.1)


def test_webhook_burst_and_polls_survive_a_redis_restart(cluster):
    browsers = [Browser(cluster) for _ in range(2)]
    for browser in browsers:
        browser.to_payment_step()  # polling checkouts NodeRails has not been paid for
    paid = []
    for _ in range(ORDERS):
        order, payment, sid = cluster.pending_order()
        cluster.sim.mark_paid(sid)
        paid.append((order, payment, sid, cluster.sim.build_event('payment.captured', sid)))
    stop, answers = threading.Event(), []
    pollers = [threading.Thread(target=poll, args=(b, stop, answers)) for b in browsers]
    for thread in pollers:
        thread.start()
    deliveries = [(sid, document) for _o, _p, sid, document in paid] * COPIES
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(deliver_until_accepted, cluster, sid, document) for sid, document in deliveries]
        time.sleep(1.0)  # mid-burst: cache, sessions and celery's queues are lost
        cluster.restart_redis(down_seconds=1.0)
        results = [f.result() for f in futures]
    stop.set()
    for thread in pollers:
        thread.join(30)

    assert all(isinstance(status, int) and 200 <= status < 300 for status in results), results
    with scopes_disabled():
        from pretix.base.models import LogEntry, OrderPayment
        orders = [o.pk for o, _p, _s, _d in paid]
        confirmed = OrderPayment.objects.filter(pk__in=[p.pk for _o, p, _s, _d in paid], state='confirmed',
                                                order__status='p').count()
        twice = (LogEntry.objects.filter(object_id__in=orders, action_type__in=[
            harness.CONFIRMED_ACTION, harness.PAID_ACTION]).values('object_id', 'action_type')
            .annotate(n=Count('id')).filter(n__gt=1).count())
    assert (confirmed, twice) == (ORDERS, 0)
    # The customers' checkouts were never paid: no poll may say so, before, during or after.
    assert answers and not [a for a in answers if a[1]], answers
    assert {a[0] for a in answers} <= {200, 404, 429, 500, 503, None}, answers


def test_status_rate_limit_is_shared_across_gunicorn_workers(cluster):
    views = plugin('views')
    browser = Browser(cluster)
    session_id = browser.to_payment_step()
    # The limit counts per fixed window: the whole burst falls into one.
    while time.time() % views.STATUS_RATE_WINDOW_SECONDS > views.STATUS_RATE_WINDOW_SECONDS - 25:
        time.sleep(0.5)
    asked_before = len(_session_reads(cluster, session_id))
    served_before = len(cluster.access_log())
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: browser.status().status_code, range(views.STATUS_RATE_LIMIT + 12)))
    status_lines = [line for line in cluster.access_log()[served_before:] if '/status/' in line]
    workers = {line.split()[0] for line in status_lines}
    assert len(workers) >= 2, status_lines  # the polls were spread over several workers ...
    assert codes.count(429) == 12 and codes.count(200) == views.STATUS_RATE_LIMIT, codes  # ... and counted once
    # The status cache is shared too: a handful of NodeRails reads for the whole burst.
    assert len(_session_reads(cluster, session_id)) - asked_before <= 2 * len(workers)

    # redis gone: sessions, status cache and rate limit with it. Nothing says paid, NodeRails is not asked.
    cluster.sim.mark_paid(session_id)
    asked_before = len(_session_reads(cluster, session_id))
    cluster.redis.kill()
    try:
        answers = [browser.status() for _ in range(10)]
    finally:
        cluster.start_redis()
    assert all(a.status_code != 200 for a in answers), [(a.status_code, a.text[:200]) for a in answers]
    assert not [a for a in answers if _json(a).get('paid')]
    assert len(_session_reads(cluster, session_id)) == asked_before


def _session_reads(cluster, session_id):
    return [r for r in cluster.sim.requests_for('get_session') if session_id in r.path]


def _json(response):
    try:
        return json.loads(response.text)
    except ValueError:
        return {}
