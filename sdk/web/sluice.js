/*! Sluice Web SDK v1 — send events from a web page to a Sluice gateway (SPEC §10). */
(function (global) {
  'use strict';

  // Unsent events live in first-party storage until a 2xx (or a refusal that no retry can
  // change) answers them: a reload, a closed tab or an offline spell loses none, and each keeps
  // the Idempotency-Key it was given when tracked, so a retry is never counted twice.
  var QUEUE_KEY = 'sluice:queue';
  var TRACKER_KEY = 'sluice:trackerId';
  // Bounds on what a page keeps: the oldest events go first past them.
  var MAX_EVENTS = 200;
  var MAX_BYTES = 256 * 1024;
  // Retries after a failure with no Retry-After: exponential from 1 s, at most a minute.
  var FIRST_BACKOFF_MS = 1000;
  var MAX_BACKOFF_MS = 60000;

  var config = null;
  var queue = [];
  var inFlight = null;
  var timer = null;
  var backoff = 0;
  var memoryStore = {};

  function storage() {
    try {
      var s = global.localStorage;
      s.setItem('sluice:probe', '1');
      s.removeItem('sluice:probe');
      return s;
    } catch (e) {
      // Private modes and sandboxed frames: keep the queue for this page only.
      return {
        getItem: function (k) { return Object.prototype.hasOwnProperty.call(memoryStore, k) ? memoryStore[k] : null; },
        setItem: function (k, v) { memoryStore[k] = String(v); },
        removeItem: function (k) { delete memoryStore[k]; }
      };
    }
  }

  function uuid() {
    var c = global.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var i = 0; i < 16; i++) h.push((b[i] + 0x100).toString(16).slice(1));
    return h.slice(0, 4).join('') + '-' + h.slice(4, 6).join('') + '-' + h.slice(6, 8).join('') +
      '-' + h.slice(8, 10).join('') + '-' + h.slice(10).join('');
  }

  function load() {
    try {
      var saved = JSON.parse(storage().getItem(QUEUE_KEY) || '[]');
      queue = Array.isArray(saved) ? saved : [];
    } catch (e) {
      queue = [];
    }
  }

  function save() {
    var text = JSON.stringify(queue);
    while (queue.length > MAX_EVENTS || (text.length > MAX_BYTES && queue.length > 1)) {
      queue.shift();
      text = JSON.stringify(queue);
    }
    try { storage().setItem(QUEUE_KEY, text); } catch (e) { /* full: kept in memory */ }
  }

  function trackerId() {
    var s = storage();
    var id = s.getItem(TRACKER_KEY);
    if (!id) {
      id = uuid();
      s.setItem(TRACKER_KEY, id);
    }
    return id;
  }

  function url(event) {
    return config.endpoint + '/v1/' + encodeURIComponent(config.storeId) +
      '/sdk/custom-events/alias/' + encodeURIComponent(event.alias);
  }

  function schedule(ms) {
    if (timer !== null) return;
    timer = global.setTimeout(function () {
      timer = null;
      send();
    }, ms);
  }

  function done(id) {
    load(); // another tab of the same site may have changed it
    queue = queue.filter(function (e) { return e.id !== id; });
    save();
  }

  function retryIn(response) {
    var after = response && Number(response.headers.get('Retry-After'));
    backoff = backoff ? Math.min(backoff * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
    var wait = after > 0 ? after * 1000 : backoff;
    // A little jitter, so many pages limited together do not return together.
    return wait + Math.floor(Math.random() * 250);
  }

  // One event at a time, oldest first: a visitor's events arrive in the order they happened.
  function send() {
    if (!config || inFlight || !queue.length) return;
    var event = queue[0];
    inFlight = event.id;
    global.fetch(url(event), {
      method: 'POST',
      keepalive: true,
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': event.id },
      body: JSON.stringify(event.body)
    }).then(function (response) {
      inFlight = null;
      var s = response.status;
      if (s === 429 || s === 503 || s === 408 || s >= 500) {
        schedule(retryIn(response));
        return;
      }
      // Accepted, or refused for good (a 4xx no retry changes): either way it is answered.
      backoff = 0;
      done(event.id);
      schedule(0);
    }, function () {
      // No answer (offline, blocked): try again later, and as soon as the browser is online.
      inFlight = null;
      schedule(retryIn(null));
    });
  }

  // Leaving the page: what is still queued goes by beacon, which outlives the page. A beacon
  // cannot carry headers, so the key travels in the query; the events stay queued, and sent
  // again from the next page they are recognised by that key and not counted twice.
  function onPageHide() {
    if (!config || !global.navigator || !global.navigator.sendBeacon) return;
    for (var i = 0; i < queue.length; i++) {
      var event = queue[i];
      if (event.id === inFlight) continue;
      var blob = new Blob([JSON.stringify(event.body)], { type: 'text/plain' });
      global.navigator.sendBeacon(url(event) + '?idempotencyKey=' + encodeURIComponent(event.id), blob);
    }
  }

  var Sluice = {
    /** Starts sending: `endpoint` is the gateway's base URL, `storeId` the store's id. */
    init: function (options) {
      if (!options || !options.endpoint || !options.storeId) {
        throw new Error('Sluice.init needs {endpoint, storeId}');
      }
      config = { endpoint: String(options.endpoint).replace(/\/+$/, ''), storeId: String(options.storeId) };
      load();
      trackerId();
      global.addEventListener('pagehide', onPageHide);
      global.addEventListener('online', function () { backoff = 0; schedule(0); });
      schedule(0);
    },
    /** Queues an event of the receive type `alias`; returns its id (its Idempotency-Key). */
    track: function (alias, fields) {
      var body = {};
      for (var k in fields || {}) {
        if (Object.prototype.hasOwnProperty.call(fields, k)) body[k] = fields[k];
      }
      body._trackerId = trackerId();
      var event = { id: uuid(), alias: String(alias), body: body };
      load();
      queue.push(event);
      save();
      schedule(0);
      return event.id;
    },
    /** The anonymous visitor id kept for this site. */
    trackerId: trackerId,
    /** How many events wait to be sent (for pages and tests). */
    pending: function () { return queue.length; }
  };

  global.Sluice = Sluice;
})(typeof window !== 'undefined' ? window : this);
