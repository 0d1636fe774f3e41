/*
 * NodeRails hosted checkout on pretix's order confirmation page.
 *
 * Shipped as a static file because pretix's Content-Security-Policy blocks inline
 * scripts. All text comes from the server-rendered (translated) template; this file
 * only toggles it.
 *
 * The Place-order button stays disabled until the payment is detected, either by
 * polling our status endpoint (which asks NodeRails server-side) or by a message from
 * the embedded checkout. pretix verifies the session again when the order is placed,
 * so a forged message can at most enable a button.
 *
 * A failed attempt is not the end: the customer may retry the wallet payment inside the
 * checkout, so the failure is shown and polling goes on until the session is paid, or
 * can no longer be (expired, paid a different amount, or gone).
 */
(function () {
    'use strict';

    var MIN_POLL_MS = 1000;
    var MAX_BACKOFF_MS = 60000;

    function init(root) {
        var statusUrl = root.getAttribute('data-status-url');
        var origin = root.getAttribute('data-payment-ui-origin');
        var sessionId = root.getAttribute('data-session-id');
        var interval = Math.max(MIN_POLL_MS, parseInt(root.getAttribute('data-poll-interval'), 10) || 3000);
        var frame = root.querySelector('iframe');
        var announcer = root.querySelector('[data-noderails-announcer]');
        var form = root.closest ? root.closest('form') : null;
        var buttons = form ? Array.prototype.filter.call(
            form.querySelectorAll('button[type="submit"], input[type="submit"]'),
            function (b) { return !root.contains(b); }
        ) : [];
        // 'waiting' until 'paid' or 'over'; failed records that the last attempt failed.
        var state = 'waiting';
        var failed = false;
        var timer = null;
        var delay = interval;

        function setButtons(enabled) {
            buttons.forEach(function (b) {
                b.disabled = !enabled;
                if (enabled) {
                    b.removeAttribute('aria-disabled');
                } else {
                    b.setAttribute('aria-disabled', 'true');
                }
            });
        }

        function show(name) {
            var text = '';
            Array.prototype.forEach.call(root.querySelectorAll('[data-noderails-state]'), function (el) {
                el.hidden = el.getAttribute('data-noderails-state') !== name;
                if (!el.hidden) {
                    text = el.textContent.replace(/\s+/g, ' ').trim();
                }
            });
            // Written only when it changes: every write to a live region is read out again.
            if (announcer && announcer.textContent !== text) {
                announcer.textContent = text;
            }
        }

        function isFinal() {
            return state === 'paid' || state === 'over';
        }

        function finish(name) {
            state = name === 'paid' ? 'paid' : 'over';
            if (timer) {
                window.clearTimeout(timer);
                timer = null;
            }
            show(name);
            setButtons(name === 'paid');
        }

        function attemptFailed() {
            // Shown until the retried payment arrives; polling goes on.
            failed = true;
            show('failed');
        }

        function schedule(ms) {
            if (isFinal()) {
                return;
            }
            if (timer) {
                window.clearTimeout(timer);
            }
            timer = window.setTimeout(poll, ms);
        }

        function handle(data, httpStatus) {
            if (isFinal()) {
                return;  // a poll still in flight when the checkout reported its outcome
            }
            if (data && data.paid === true) {
                finish('paid');
                return;
            }
            var status = data && typeof data.status === 'string' ? data.status : '';
            if (status === 'EXPIRED' || status === 'AMOUNT_MISMATCH' || httpStatus === 404) {
                finish('failed');
                return;
            }
            if (httpStatus === 429 || httpStatus >= 500 || status === 'UNAVAILABLE') {
                show('unavailable');
                delay = Math.min(MAX_BACKOFF_MS, delay * 2);
            } else if (status === 'FAILED' || failed) {
                attemptFailed();
                delay = interval;
            } else {
                show('waiting');
                delay = interval;
            }
            schedule(delay);
        }

        function poll() {
            timer = null;
            if (!window.fetch) {
                return;
            }
            window.fetch(statusUrl, {
                credentials: 'same-origin',
                cache: 'no-store',
                headers: {'Accept': 'application/json'}
            }).then(function (response) {
                return response.json().then(function (data) {
                    handle(data, response.status);
                }, function () {
                    handle(null, response.status);
                });
            }, function () {
                handle(null, 503);
            });
        }

        function onMessage(event) {
            // Only the embedded NodeRails checkout may speak, and only about this session.
            if (event.origin !== origin || !frame || event.source !== frame.contentWindow) {
                return;
            }
            var data = event.data;
            if (!data || typeof data !== 'object' || data.sessionId !== sessionId) {
                return;
            }
            if (data.type === 'noderails:checkout-complete') {
                finish('paid');
            } else if (data.type === 'noderails:checkout-failed' && !isFinal()) {
                attemptFailed();
            }
        }

        if (form) {
            // Enter in a form field would submit without the (disabled) button.
            form.addEventListener('submit', function (event) {
                if (state !== 'paid') {
                    event.preventDefault();
                    event.stopImmediatePropagation();
                }
            }, true);
        }
        setButtons(false);
        show('waiting');
        window.addEventListener('message', onMessage, false);
        schedule(0);
    }

    function start() {
        Array.prototype.forEach.call(document.querySelectorAll('[data-noderails-checkout]'), init);
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        start();
    }
}());
