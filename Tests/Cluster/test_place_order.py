"""Place order as production runs it: pretix hands order placement to a celery worker, the
customer's browser waits on pretix's async page, and NodeRails' capture webhook races it to gunicorn."""

import threading

from django_scopes import scopes_disabled

import harness
from conftest import Browser, order_code, plugin


def test_place_order_runs_in_celery_and_binds_the_checkout(cluster):
    browser = Browser(cluster)
    session_id = browser.to_payment_step()
    cluster.sim.mark_paid(session_id)
    # NodeRails' capture webhook arrives while the order is being placed: each of the three
    # deliveries races the celery worker (the plugin binds the checkout in order_placed).
    webhook = threading.Thread(target=cluster.sim.deliver, args=('payment.captured', session_id),
                               kwargs={'times': 3})
    webhook.start()
    waited, location = browser.place_order()
    webhook.join(60)
    with scopes_disabled():
        # Bound by the celery worker that created the order, before the browser comes back.
        checkout = plugin('models').CartCheckout.objects.get(session_id=session_id)
        assert checkout.state == 'claimed', checkout.state
    page = browser.follow(location)

    code = order_code(page.url)
    assert page.status_code == 200, (page.status_code, page.url)
    with scopes_disabled():
        from pretix.base.models import Order
        order = Order.objects.get(code=code)
        payment = order.payments.get()
        checkout = plugin('models').CartCheckout.objects.get(session_id=session_id)
        assert (order.status, payment.state, checkout.state) == ('p', 'confirmed', 'claimed')
        assert harness.action_count(order, harness.CONFIRMED_ACTION) == 1
        assert harness.action_count(order, harness.PAID_ACTION) == 1
    # The browser sees what it sees in-process: the order page, paid.
    assert '/order/%s/' % code in page.url and 'paid' in page.text.lower()
    # The order was placed by a celery worker, not by the gunicorn worker that took the POST.
    task_id = waited.split('async_id=')[1].split('&')[0]
    assert 'perform_order[%s] succeeded' % task_id in cluster.celery_log(), cluster.celery_log()[-3000:]
    assert cluster.sim.refunds_for(session_id) == []
