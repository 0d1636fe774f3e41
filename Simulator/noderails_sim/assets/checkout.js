/* NodeRails simulator: hosted checkout page behaviour.
 * "Pay" marks the session PAID on the simulator, "Fail" marks it FAILED; either way
 * the outcome is posted to window.parent like the real hosted checkout does:
 *   {type: 'noderails:checkout-complete' | 'noderails:checkout-failed', sessionId, intentId, status}
 * with targetOrigin '*'. data-post-message="0" turns the messages off (a checkout
 * that never talks to its embedder, so the merchant page must rely on polling).
 * data-retry="1" keeps the buttons usable after Fail: the customer may try again.
 */
(function () {
    'use strict';
    var root = document.getElementById('nr-checkout');
    if (!root) {
        return;
    }
    var sessionId = root.getAttribute('data-session-id');
    var base = root.getAttribute('data-action-base');
    var postMessages = root.getAttribute('data-post-message') === '1';
    // A failed attempt may be retried (the simulator's retry_after_failure).
    var retry = root.getAttribute('data-retry') === '1';
    var statusEl = document.getElementById('nr-status');
    var errorEl = document.getElementById('nr-error');
    var buttons = [document.getElementById('nr-pay'), document.getElementById('nr-fail')];

    function notify(type, data) {
        if (!postMessages || !window.parent || window.parent === window) {
            return;
        }
        window.parent.postMessage({
            type: type,
            sessionId: data.sessionId || sessionId,
            intentId: data.paymentIntentId || null,
            status: data.status
        }, '*');
    }

    function act(action, messageType) {
        buttons.forEach(function (b) { b.disabled = true; });
        errorEl.hidden = true;
        fetch(base + '/' + action, {method: 'POST', headers: {'Accept': 'application/json'}})
            .then(function (response) {
                return response.json().then(function (data) {
                    if (!response.ok) {
                        throw new Error(data && data.message ? data.message : 'HTTP ' + response.status);
                    }
                    statusEl.textContent = data.status;
                    statusEl.setAttribute('data-status', data.status);
                    notify(messageType, data);
                    if (retry && data.status === 'FAILED') {
                        buttons.forEach(function (b) { b.disabled = false; });
                    }
                });
            })
            .catch(function (err) {
                errorEl.textContent = String(err && err.message ? err.message : err);
                errorEl.hidden = false;
                buttons.forEach(function (b) { b.disabled = false; });
            });
    }

    buttons[0].addEventListener('click', function () { act('pay', 'noderails:checkout-complete'); });
    buttons[1].addEventListener('click', function () { act('fail', 'noderails:checkout-failed'); });
}());
