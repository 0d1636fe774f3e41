"""A failed attempt is not the end of the checkout: the customer retries the wallet payment inside
the embedded NodeRails checkout and pays. The confirm page shows the failure, keeps asking whether
the session was paid, and enables Place order once it is.

The simulator's retry_after_failure keeps a failed session payable, as NodeRails' hosted checkout
does for a wallet payment that can be tried again. Two ways the failure reaches the page: the
iframe posts it (and later its success), or the checkout posts nothing and only the session's
status, polled through pretix, says FAILED and then PAID.
"""

import pytest
from django_scopes import scopes_disabled
from selenium.webdriver.common.by import By

from browser_support import PRICE
from shopper import Shopper

pytestmark = pytest.mark.django_db(transaction=True)

FAILED_MESSAGE = 'noderails:checkout-failed'


@pytest.fixture
def shopper(browser, configured):
    return Shopper(browser, configured)


@pytest.mark.parametrize('messages', [True, False], ids=['iframe-reports', 'session-reports'])
def test_customer_pays_after_a_failed_attempt_and_the_order_is_paid(shopper, sim, messages):
    sim.configure(retry_after_failure=True, post_message=messages)
    sid = shopper.to_confirm()
    shopper.install_spy()

    shopper.fail_in_checkout()
    shopper.wait(lambda: shopper.visible_states() == ['failed'], message='the failure message')
    assert not shopper.place_order_enabled()
    assert [m['type'] for m in shopper.seen()] == ([FAILED_MESSAGE] if messages else [])
    assert sim.session(sid)['status'] == 'FAILED'

    # The page keeps asking: two more status polls reach NodeRails after the failure is shown (one
    # could have been in flight already).
    asked = len(sim.requests_for('get_session'))
    shopper.wait(lambda: len(sim.requests_for('get_session')) >= asked + 2, timeout=6 * shopper.poll_interval_seconds(),
                 message='status polls after the failure')
    assert shopper.visible_states() == ['failed'] and not shopper.place_order_enabled()

    shopper.pay_in_checkout()
    shopper.wait_place_order_enabled()
    assert shopper.visible_states() == ['paid']
    shopper.click_place_order()
    shopper.wait(lambda: shopper.d.find_elements(By.CSS_SELECTOR, '.textbubble-success'),
                 message="the order page's status badge")

    from pretix.base.models import Order
    with scopes_disabled():
        order = Order.objects.filter(event=shopper.shop.event).order_by('-pk').first()
        payments = [(p.provider, p.state, p.info_data.get('session_id')) for p in order.payments.all()]
    assert order.status == 'p' and order.total == PRICE
    assert payments == [('noderails', 'confirmed', sid)]
