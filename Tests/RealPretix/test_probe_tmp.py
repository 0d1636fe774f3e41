import pytest
from conftest import *  # noqa

@pytest.mark.django_db
def test_probe(customer, sim):
    c = customer
    r = c.add_to_cart(); print('cart', r['Location'])
    r = c.client.get(c.url('/checkout/start')); print('start', r.status_code, r.get('Location'))
    r = c.client.get(r['Location']); print('q', r.status_code, r.get('Location'))
    r = c.questions(); print('qpost', r['Location'])
    r = c.choose_payment(); print('pay', r.status_code, r.get('Location'), c.state)
    print([ (q.method, q.path, q.header('Idempotency-Key'), q.body) for q in sim.requests])
    r = c.confirm_page(); print('confirm', r.status_code, r['Content-Security-Policy'])
    html = r.content.decode(); import re; print(re.findall(r'<iframe[^>]*>', html))
    sid = c.state['session_id']
    sim.mark_paid(sid)
    r, order = c.place_order(); print('place', r.status_code, r.get('Location'), order and order.code)
    r = c.client.get(r['Location']); print('complete', r.status_code, r.get('Location'))
    from django_scopes import scopes_disabled
    with scopes_disabled():
        order.refresh_from_db(); print(order.status, [(p.provider, p.state) for p in order.payments.all()])
