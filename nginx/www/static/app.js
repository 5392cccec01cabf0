// The buyer's page: sign-up and log-in, the live sales, buying with safe
// retries, and the buyer's holds and orders. Plain DOM; every piece of data
// goes into the page through textContent or attributes, never as HTML.

const SALES_REFRESH_MS = 2000;
const ORDERS_REFRESH_MS = 10000;
const REQUEST_TIMEOUT_MS = 5000;
const RETRY_BUDGET_MS = 20000;
const BACKOFF_MS = [500, 1000, 2000]; // then 2 s for every further retry
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const MAX_QUANTITY = 5;

const $ = (id) => document.getElementById(id);
const ui = {
  signedOut: $('signed-out'),
  signedIn: $('signed-in'),
  signupForm: $('signup-form'),
  signupEmail: $('signup-email'),
  signupPassword: $('signup-password'),
  signupSubmit: $('signup-submit'),
  loginForm: $('login-form'),
  loginEmail: $('login-email'),
  loginPassword: $('login-password'),
  loginSubmit: $('login-submit'),
  logout: $('logout'),
  whoami: $('whoami'),
  authMessage: $('auth-message'),
  salesList: $('sales'),
  salesNote: $('sales-note'),
  salesEmpty: $('sales-empty'),
  resultHeading: $('result-heading'),
  result: $('result'),
  resultHint: $('result-hint'),
  orders: $('my-orders'),
  ordersNote: $('orders-note'),
  ordersEmpty: $('orders-empty'),
  ordersBody: $('orders-body'),
  holds: $('my-holds'),
  holdsHeading: $('holds-heading'),
  holdsNote: $('holds-note'),
  holdsEmpty: $('holds-empty'),
  holdsStatus: $('holds-status'),
  holdsBody: $('holds-body'),
};

const state = {
  customer: null,       // {customer_id, email} while signed in
  products: new Map(),  // product id -> latest product from /sales
  cards: new Map(),     // product id -> the card's elements
  buying: new Set(),    // product ids with a purchase in progress
  passed: new Set(),    // sale start/end instants that already triggered a refresh
  orders: null,         // the signed-in buyer's orders, most recent first
  ordersSignature: '',  // what the orders table shows, to skip needless redraws
  pendingCancel: null,  // order id whose "Confirm cancel" step is shown
  cancelling: new Set(),
  holds: null,          // the signed-in buyer's holds, most recent first
  holdsSignature: '',   // what the holds table shows, to skip needless redraws
  pendingRelease: null, // hold id whose "Confirm release" step is shown
  holdBusy: new Map(),  // hold id -> 'buying' | 'releasing' while in progress
  holdClocks: new Map(), // HELD hold id -> {cell, expires}: its time-left cell
  offsets: [],          // recent (server clock - browser clock) samples, ms
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children); // strings become text nodes: no HTML parsing
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const moneyFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const money = (cents) => moneyFormat.format(Number(cents) / 100);

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// "00:00:05", or "2d 03:04:05" beyond a day. Rounded up, so the display
// reads 00:00:00 exactly when the sale opens.
function formatDuration(ms) {
  let s = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(s / 86400);
  s %= 86400;
  const clock = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return days ? `${days}d ${clock}` : clock;
}

// The API's error text as a sentence.
function apiError(data, fallback) {
  const text = data && typeof data.error === 'string' && data.error.trim() ? data.error.trim() : fallback;
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

// A UUID v4. crypto.randomUUID exists only in secure contexts (https or
// localhost); a page served over plain http on a LAN builds one instead.
function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// One HTTP exchange with a client timeout covering the whole answer.
// Resolves to {status, data, retryAfter}; rejects on a network error or
// timeout. The session cookie goes along by itself (same origin).
async function request(method, path, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const init = {
    method,
    signal: controller.signal,
    cache: 'no-store',
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = body;
  }
  try {
    const res = await fetch(path, init);
    const text = await res.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = {}; // not JSON (e.g. a proxy's error page): use our own words
    }
    return { status: res.status, data: data || {}, retryAfter: res.headers.get('Retry-After') };
  } finally {
    clearTimeout(timer);
  }
}

// Retry-After in ms: seconds or an HTTP date; 1 s when absent (the load
// balancer's own 429 sends none).
function retryAfterMs(header) {
  if (header) {
    const seconds = Number(header);
    if (Number.isFinite(seconds)) return Math.max(500, seconds * 1000);
    const date = Date.parse(header);
    if (!Number.isNaN(date)) return Math.max(500, date - Date.now());
  }
  return 1000;
}

// Focus moves only when the focused control vanished or was disabled
// (document.activeElement falls back to body): never on a periodic refresh.
function focusIfLost(target) {
  const active = document.activeElement;
  if (!active || active === document.body) target.focus();
}

// ------------------------------------------------------------ server clock

function noteServerTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return;
  state.offsets.push(t - Date.now());
  if (state.offsets.length > 10) state.offsets.shift();
}

// The server's clock now. Network latency and the load balancer's ~1 s
// cache can only make a response's server_time older than the true server
// time, never newer, so the largest recent offset is the best estimate.
function serverNow() {
  return Date.now() + (state.offsets.length ? Math.max(...state.offsets) : 0);
}

// ----------------------------------------------------------------- result

const RESULT_STATES = ['success', 'sold_out', 'not_started', 'ended', 'limit_reached', 'in_progress', 'error', 'cancelled', 'released'];

function showResult(kind, message, { detail = '', orderId = '' } = {}) {
  if (!RESULT_STATES.includes(kind)) kind = 'error';
  ui.result.dataset.state = kind;
  if (orderId) ui.result.dataset.orderId = orderId;
  else delete ui.result.dataset.orderId;
  const lines = [el('p', { class: 'result-main' }, message)];
  if (detail) lines.push(el('p', { class: 'result-detail' }, detail));
  ui.result.replaceChildren(...lines);
  ui.resultHint.hidden = true;
  // Keeps the result panel in view (sticky) once it has something to say.
  document.body.classList.add('has-result');
}

function setAuthMessage(text, kind = 'info') {
  ui.authMessage.textContent = text;
  ui.authMessage.dataset.kind = kind;
}

// ------------------------------------------------------------------ sales

function saleStatus(p, now) {
  const sale = p.sale || {};
  const starts = Date.parse(sale.starts_at);
  const ends = Date.parse(sale.ends_at);
  let status = sale.status;
  // The list can be a second or two old: move a sale on as its instants
  // pass, so the button opens right at the countdown's zero. The server
  // still decides (it answers sale_not_started if we were early).
  if (status === 'upcoming' && starts <= now) status = 'active';
  if (status === 'active' && ends <= now) status = 'ended';
  return { status, starts, ends };
}

const isSoldOut = (p) => Boolean(p.sold_out) || Number(p.current_stock) <= 0;
const productName = (id) => (state.products.get(id) || {}).name || `Product #${id}`;

function quantityLimit(p) {
  const limit = p.sale && p.sale.per_customer_limit;
  return Number.isInteger(limit) && limit > 0 ? Math.min(MAX_QUANTITY, limit) : MAX_QUANTITY;
}

function createCard(p) {
  const key = String(p.id).replace(/[^\w-]/g, '_');
  const ids = { name: `p-${key}-name`, qty: `p-${key}-qty`, reason: `p-${key}-reason` };
  const card = {
    name: el('h3', { id: ids.name }),
    price: el('p', { class: 'price' }),
    stock: el('p', { class: 'stock' }),
    status: el('p', { class: 'status' }),
    limit: el('p', { class: 'limit' }),
    select: el('select', { class: 'quantity', id: ids.qty, 'aria-describedby': ids.name }),
    button: el('button', { type: 'button', class: 'buy', 'aria-describedby': `${ids.name} ${ids.reason}` }, 'Buy now'),
    reason: el('p', { class: 'reason', id: ids.reason }),
    max: 0,
    statusText: '',
  };
  card.root = el('li', { class: 'card', 'data-product-id': String(p.id) },
    card.name, card.price, card.status, card.stock, card.limit,
    el('div', { class: 'buy-row' },
      el('label', { for: ids.qty }, 'Quantity'), card.select, card.button),
    card.reason);
  card.button.addEventListener('click', () => buy(p.id));
  state.cards.set(p.id, card);
  return card;
}

function updateCard(card, p) {
  card.name.textContent = p.name;
  card.price.textContent = money(p.price);
  card.stock.textContent = isSoldOut(p) ? 'Sold out' : `${p.current_stock} left`;
  card.root.dataset.soldOut = String(isSoldOut(p));
  const limit = p.sale && p.sale.per_customer_limit;
  card.limit.textContent = Number.isInteger(limit) ? `Limit ${limit} per customer` : '';
  card.limit.hidden = !card.limit.textContent;

  // Rebuilt only when the limit changes, so an open select is not disturbed.
  const max = quantityLimit(p);
  if (max !== card.max) {
    const chosen = Math.min(Number(card.select.value) || 1, max);
    card.select.replaceChildren(...Array.from({ length: max }, (_, i) => el('option', { value: String(i + 1) }, String(i + 1))));
    card.select.value = String(chosen);
    card.max = max;
  }
  updateCardTime(card, p, serverNow());
}

// Status, countdown and the Buy button's state. Returns true when a sale's
// start or end has just passed (the caller refreshes the list at once).
function updateCardTime(card, p, now) {
  const { status, starts, ends } = saleStatus(p, now);
  const server = p.sale && p.sale.status;
  let passed = false;
  for (const [instant, from] of [[starts, 'upcoming'], [ends, 'active']]) {
    const key = `${p.id}@${instant}`;
    if (server === from && instant <= now && !state.passed.has(key)) {
      state.passed.add(key);
      passed = true;
    }
  }

  let text;
  let countdown = null;
  if (status === 'upcoming') {
    countdown = Number.isNaN(starts) ? 'Start time to be announced' : `Starts in ${formatDuration(starts - now)}`;
    text = `Upcoming · ${countdown}`;
  } else if (status === 'active') {
    text = Number.isNaN(ends) ? 'On sale' : `On sale · ends in ${formatDuration(ends - now)}`;
  } else if (status === 'ended') {
    text = 'Sale ended';
  } else {
    text = 'Not on sale';
  }
  if (text !== card.statusText) {
    card.statusText = text;
    if (countdown) card.status.replaceChildren('Upcoming · ', el('span', { class: 'countdown' }, countdown));
    else card.status.textContent = text;
  }
  card.root.dataset.status = status || 'unknown';

  let reason = '';
  if (state.buying.has(p.id)) reason = 'Purchase in progress…';
  else if (!state.customer) reason = 'Log in to buy.';
  else if (status === 'ended') reason = 'The sale has ended.';
  else if (isSoldOut(p)) reason = 'Sold out.';
  else if (status === 'upcoming') reason = 'Not on sale yet.';
  else if (status !== 'active') reason = 'Not on sale.';
  card.button.disabled = reason !== '';
  card.reason.textContent = reason;
  card.reason.hidden = reason === '';
  return passed;
}

function renderSales(products) {
  const seen = new Set();
  products.forEach((p, i) => {
    seen.add(p.id);
    state.products.set(p.id, p);
    const card = state.cards.get(p.id) || createCard(p);
    const atPlace = ui.salesList.children[i];
    if (atPlace !== card.root) ui.salesList.insertBefore(card.root, atPlace || null);
    updateCard(card, p);
  });
  for (const [id, card] of state.cards) {
    if (!seen.has(id)) {
      card.root.remove();
      state.cards.delete(id);
      state.products.delete(id);
    }
  }
  ui.salesEmpty.hidden = products.length > 0;
  renderOrders(); // product names may have arrived
  renderHolds();
}

function refreshCards() {
  const now = serverNow();
  for (const [id, card] of state.cards) updateCardTime(card, state.products.get(id), now);
}

// A page of /sales holds at most this many products: a shorter page is
// the last one, so the usual refresh is one request, not two.
const SALES_PAGE_MAX = 100;

// All pages of /sales: ?after=<last id> until a short or empty page.
// `fresh`: past the lb's 1 s cache (a parameter it keys on), so that the
// card a buyer just bought from shows what the purchase did at once; one
// database query per purchase, never per poll.
async function loadAllSales(fresh) {
  const products = [];
  let after = null;
  const bust = fresh ? `fresh=${Date.now()}` : '';
  for (let page = 0; page < 1000; page++) {
    const params = [after === null ? '' : `after=${encodeURIComponent(after)}`, bust].filter(Boolean);
    const path = params.length ? `/sales?${params.join('&')}` : '/sales';
    const r = await request('GET', path);
    if (r.status !== 200 || !Array.isArray(r.data.products)) throw new Error(apiError(r.data, `the server answered ${r.status}`));
    if (page === 0) noteServerTime(r.data.server_time);
    if (r.data.products.length === 0) break;
    products.push(...r.data.products);
    if (r.data.products.length < SALES_PAGE_MAX) break;
    after = r.data.products[r.data.products.length - 1].id;
  }
  renderSales(products);
}

// One refresh at a time; a refresh asked for meanwhile runs right after,
// so that a purchase's outcome is always followed by a fresh list.
let salesRun = null;
let salesAgain = false;
let salesFresh = false;
let salesTimer = 0;

function refreshSales(fresh = false) {
  salesFresh = salesFresh || fresh;
  if (salesRun) {
    salesAgain = true;
    return salesRun;
  }
  clearTimeout(salesTimer);
  const thisFresh = salesFresh;
  salesFresh = false;
  salesRun = loadAllSales(thisFresh)
    .then(() => {
      ui.salesNote.textContent = '';
      ui.salesNote.hidden = true;
    })
    .catch((err) => {
      const why = err && err.name === 'AbortError' ? 'no answer in time' : err && err.message;
      ui.salesNote.textContent = `Could not update the sales (${why || 'network error'}). Trying again…`;
      ui.salesNote.hidden = false;
    })
    .finally(() => {
      salesRun = null;
      if (salesAgain) {
        salesAgain = false;
        refreshSales();
      } else {
        scheduleSales();
      }
    });
  return salesRun;
}

function scheduleSales() {
  clearTimeout(salesTimer);
  if (document.visibilityState === 'visible') salesTimer = setTimeout(refreshSales, SALES_REFRESH_MS);
}

// Redraws countdowns on each whole second of the server's clock.
function tick() {
  const now = serverNow();
  let passed = false;
  for (const [id, card] of state.cards) {
    if (updateCardTime(card, state.products.get(id), now)) passed = true;
  }
  if (passed) refreshSales();
  tickHolds(now);
  setTimeout(tick, 1000 - (((now % 1000) + 1000) % 1000) + 5);
}

// ------------------------------------------------------------------- buying

async function buy(productId) {
  const p = state.products.get(productId);
  const card = state.cards.get(productId);
  if (!p || !card || !state.customer || state.buying.has(productId)) return;

  const item = {
    name: p.name,
    quantity: Number(card.select.value) || 1,
    limit: p.sale && p.sale.per_customer_limit,
  };
  // One key per click; every retry of this click re-sends these exact bytes.
  const body = JSON.stringify({ product_id: p.id, idempotency_key: newIdempotencyKey(), quantity: item.quantity });

  state.buying.add(productId);
  updateCardTime(card, p, serverNow());
  showResult('in_progress', `In progress… buying ${item.quantity} × ${item.name}.`);
  try {
    await placeOrder(body, item);
  } finally {
    state.buying.delete(productId);
    const current = state.cards.get(productId);
    if (current) {
      updateCardTime(current, state.products.get(productId), serverNow());
      // The button was disabled while buying, which drops its focus.
      focusIfLost(current.button.disabled ? ui.resultHeading : current.button);
    } else {
      focusIfLost(ui.resultHeading);
    }
    refreshSales(true);
  }
}

// Resolves to true when the order was placed (settleOrder's success).
async function placeOrder(body, item) {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    let r = null;
    try {
      r = await request('POST', '/orders', body);
    } catch {
      r = null; // network error or our 5 s timeout: the order may or may not exist; the same key settles it
    }
    if (r && !RETRY_STATUSES.has(r.status)) return settleOrder(r, item);

    const wait = r && r.status === 429
      ? retryAfterMs(r.retryAfter)
      : BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)];
    if (Date.now() - started + wait > RETRY_BUDGET_MS) {
      showResult('error',
        `We could not confirm your order of ${item.quantity} × ${item.name}: the shop did not answer in time.`,
        { detail: 'It may still have gone through: check My orders before trying again.' });
      loadOrders();
      return;
    }
    const why = !r ? 'no answer from the shop'
      : r.status === 429 ? `too many requests, waiting ${Math.ceil(wait / 1000)} s`
      : 'the shop is busy';
    showResult('in_progress',
      `In progress… retrying (attempt ${attempt + 1}): ${why}.`,
      { detail: `Buying ${item.quantity} × ${item.name}. Retries cannot create a second order.` });
    await sleep(wait);
  }
}

function settleOrder(r, item) {
  const d = r.data;
  if (r.status === 200 || r.status === 201) {
    const orderId = String(d.order_id ?? d.id ?? '');
    const quantity = d.quantity ?? item.quantity;
    const total = d.total_price ?? (d.unit_price ?? 0) * quantity;
    showResult('success', `Order confirmed: ${quantity} × ${item.name}, ${money(total)}`,
      { detail: `Order id: ${orderId}`, orderId });
    loadOrders();
    return true;
  }
  if (r.status === 401) {
    sessionExpired();
    return;
  }
  if (r.status === 404 && item.hold) {
    showResult('error', `This hold no longer exists: ${item.quantity} × ${item.name}.`);
    return;
  }
  if (r.status === 409) {
    switch (d.reason) {
      case 'hold_expired':
        showResult('error', `This hold has expired: ${item.quantity} × ${item.name} is no longer reserved for you.`);
        return;
      case 'hold_not_active':
        showResult('error', `This hold was already bought or released: ${item.quantity} × ${item.name}.`,
          { detail: 'Check My orders and My holds.' });
        return;
      case 'hold_not_yours':
        showResult('error', `This hold belongs to another account: ${item.quantity} × ${item.name}.`);
        return;
      case 'insufficient_stock':
        showResult('sold_out', item.quantity > 1
          ? `Sold out: there are not ${item.quantity} × ${item.name} left. Try a smaller quantity.`
          : `Sold out: ${item.name} is sold out.`);
        return;
      case 'sale_not_started':
        showResult('not_started', `Not started yet: the sale of ${item.name} has not started. Try again when the countdown reaches zero.`);
        return;
      case 'sale_ended':
        showResult('ended', `Sale ended: the sale of ${item.name} is over.`);
        return;
      case 'customer_limit_reached':
        showResult('limit_reached', Number.isInteger(item.limit)
          ? `Limit reached: you have already bought the most allowed of ${item.name} (${item.limit} per customer).`
          : `Limit reached: you have already bought the most allowed of ${item.name}.`);
        return;
      default:
        break;
    }
  }
  showResult('error', `Could not buy ${item.name}: ${apiError(d, `the server answered ${r.status}`)}`);
}

// ------------------------------------------------------------------- orders

// One run of `load` at a time; a run asked for meanwhile starts right after
// the current one (so the latest outcome is always followed by a fresh list).
function coalesced(load) {
  let run = null;
  let again = false;
  const trigger = () => {
    if (run) {
      again = true;
      return run;
    }
    run = load().finally(() => {
      run = null;
      if (again) {
        again = false;
        trigger();
      }
    });
    return run;
  };
  return trigger;
}

// Loads the signed-in buyer's `what` (`orders` or `holds`: GET
// /<what>?customer_id=) into state[what] and draws it with `render`; a
// failure is said in `note`.
function customerList(what, note, render) {
  return coalesced(async () => {
    const customer = state.customer;
    if (!customer) return;
    try {
      const r = await request('GET', `/${what}?customer_id=${encodeURIComponent(customer.customer_id)}`);
      if (state.customer !== customer) return; // signed out or switched meanwhile
      if (r.status === 200 && Array.isArray(r.data[what])) {
        state[what] = r.data[what];
        note.hidden = true;
        render();
      } else if (r.status === 401) {
        sessionExpired();
      } else {
        note.textContent = `Could not load your ${what}: ${apiError(r.data, `the server answered ${r.status}`)}`;
        note.hidden = false;
      }
    } catch {
      if (state.customer !== customer) return;
      note.textContent = `Could not load your ${what}: no answer from the shop. Trying again shortly.`;
      note.hidden = false;
    }
  });
}

const loadOrders = customerList('orders', ui.ordersNote, () => renderOrders());

// After a table's redraw, the focus goes back to the button of class `cls`
// in the row whose data-<key> is `id`, if it is there and enabled; returns
// whether it did.
function refocus(body, key, id, cls) {
  const row = [...body.querySelectorAll('tr')].find((tr) => tr.dataset[key] === id);
  const target = row && row.querySelector(`button.${cls}:not([disabled])`);
  if (target) target.focus();
  return Boolean(target);
}

const STATUS_TEXT = { CONFIRMED: 'Confirmed', CANCELLED: 'Cancelled' };
const PAYMENT_TEXT = { PENDING: 'Payment pending', PAID: 'Paid', FAILED: 'Payment failed' };

function orderRow(o, index) {
  const nameId = `order-${index}-name`;
  const row = el('tr', { 'data-order-id': String(o.order_id), 'data-status': String(o.status) });
  const created = new Date(o.created_at);
  const when = Number.isNaN(created.getTime())
    ? String(o.created_at ?? '')
    : el('time', { datetime: created.toISOString() }, timeFormat.format(created));

  let action;
  if (state.cancelling.has(o.order_id)) {
    action = el('button', { type: 'button', class: 'cancel', disabled: '' }, 'Cancelling…');
  } else if (o.status === 'CONFIRMED' && state.pendingCancel === o.order_id) {
    action = el('div', { class: 'row-actions' },
      el('button', { type: 'button', class: 'confirm-cancel danger', 'aria-describedby': nameId }, 'Confirm cancel'),
      el('button', { type: 'button', class: 'keep' }, 'Keep order'));
  } else if (o.status === 'CONFIRMED') {
    action = el('button', { type: 'button', class: 'cancel', 'aria-describedby': nameId }, 'Cancel');
  } else {
    action = el('span', { class: 'muted' }, '—');
  }

  row.append(
    el('th', { scope: 'row', id: nameId }, o.name),
    el('td', {}, String(o.quantity)),
    el('td', {}, money(o.total_price)),
    el('td', { class: 'order-status' }, STATUS_TEXT[o.status] || String(o.status)),
    el('td', {}, PAYMENT_TEXT[o.payment_status] || String(o.payment_status ?? '')),
    el('td', {}, when),
    el('td', {}, action),
  );
  return row;
}

// focusOn: {orderId, cls} to focus after the redraw; by default whatever
// order control had focus keeps it.
function renderOrders(focusOn = null) {
  if (!state.customer || !state.orders) return;
  const orders = state.orders.map((o) => ({ ...o, name: productName(o.product_id) }));
  const signature = JSON.stringify([orders, state.pendingCancel, [...state.cancelling]]);
  if (signature === state.ordersSignature && !focusOn) return;
  state.ordersSignature = signature;

  const active = document.activeElement;
  if (!focusOn && active && ui.ordersBody.contains(active)) {
    const row = active.closest('tr');
    focusOn = { orderId: row && row.dataset.orderId, cls: active.classList[0] };
  }
  ui.ordersBody.replaceChildren(...orders.map(orderRow));
  ui.ordersEmpty.hidden = orders.length > 0;

  if (focusOn) refocus(ui.ordersBody, 'orderId', focusOn.orderId, focusOn.cls);
}

ui.ordersBody.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  const row = button && button.closest('tr');
  if (!row || button.disabled) return;
  const orderId = row.dataset.orderId;
  if (button.classList.contains('cancel')) {
    state.pendingCancel = orderId;
    renderOrders({ orderId, cls: 'confirm-cancel' });
  } else if (button.classList.contains('keep')) {
    state.pendingCancel = null;
    renderOrders({ orderId, cls: 'cancel' });
  } else if (button.classList.contains('confirm-cancel')) {
    cancelOrder(orderId);
  }
});

async function cancelOrder(orderId) {
  const order = (state.orders || []).find((o) => o.order_id === orderId);
  const name = order ? productName(order.product_id) : 'the product';
  state.pendingCancel = null;
  state.cancelling.add(orderId);
  renderOrders();
  try {
    const path = `/orders/${encodeURIComponent(orderId)}/cancel`;
    await giveBack(path, { verb: 'cancel', noun: 'order', of: name, list: 'My orders' }, (r) => {
      if (r.status === 200) {
        showResult('cancelled', order ? `Order cancelled: ${order.quantity} × ${name}.` : 'Order cancelled.',
          restoredDetail(r));
      } else if (r.status === 409 && r.data.reason === 'already_cancelled') {
        showResult('cancelled', `This order of ${name} was already cancelled.`);
      } else {
        return false;
      }
      return true;
    });
  } finally {
    rowSettled(() => state.cancelling.delete(orderId), renderOrders, loadOrders);
  }
}

// Cancelling an order and releasing a hold: POST `path`. `answer(r)` shows
// the answers particular to the action and returns false for those every
// such action shares (401, 403, any other error, no answer), shown here.
async function giveBack(path, { verb, noun, of, list }, answer) {
  try {
    const r = await request('POST', path);
    if (answer(r)) return;
    if (r.status === 401) {
      sessionExpired();
    } else if (r.status === 403) {
      showResult('error', `You cannot ${verb} this ${noun}: it belongs to another account.`);
    } else {
      showResult('error', `Could not ${verb} the ${noun} of ${of}: ${apiError(r.data, `the server answered ${r.status}`)}`);
    }
  } catch {
    showResult('error', `Could not ${verb} the ${noun} of ${of}: no answer from the shop.`,
      { detail: `Check its status in ${list} before trying again.` });
  }
}

const restoredDetail = (r) => {
  const restored = r.data.restored_quantity;
  return { detail: Number.isInteger(restored) ? `${restored} returned to stock.` : '' };
};

// An action on a row of My orders or My holds is over: the row is idle
// again (its button was disabled meanwhile, which drops the focus), and
// the list and the stock are read again.
function rowSettled(markIdle, render, reload) {
  markIdle();
  render();
  focusIfLost(ui.resultHeading);
  reload();
  refreshSales(true);
}

// -------------------------------------------------------------------- holds

const loadHolds = customerList('holds', ui.holdsNote, () => renderHolds());

const HOLD_STATUS_TEXT = { HELD: 'Held', CONSUMED: 'Bought', RELEASED: 'Released', EXPIRED: 'Expired' };

const findHold = (holdId) => (state.holds || []).find((h) => h.hold_id === holdId);

function setHoldStatus(holdId, status) {
  if (state.holds) state.holds = state.holds.map((h) => (h.hold_id === holdId ? { ...h, status } : h));
}

// The holds as shown: product names from the sales list, and a HELD hold
// whose deadline has passed on the server's clock shown as expired (the
// server reads it so too; the next load confirms it).
function holdsView(now) {
  return state.holds.map((h) => {
    const expires = Date.parse(h.expires_at);
    const lapsed = h.status === 'HELD' && expires <= now;
    return { ...h, name: productName(h.product_id), status: lapsed ? 'EXPIRED' : h.status, expires, lapsed };
  });
}

// A button whose accessible name says which hold it acts on ("Buy 2 × Lamp");
// the product is already in view in the row.
function holdButton(cls, text, h, disabled = false) {
  const attrs = { type: 'button', class: cls };
  if (disabled) attrs.disabled = '';
  return el('button', attrs, text, el('span', { class: 'visually-hidden' }, ` ${h.quantity} × ${h.name}`));
}

function holdRow(h, now) {
  const row = el('tr', { 'data-hold-id': String(h.hold_id), 'data-status': String(h.status) });
  const busy = state.holdBusy.get(h.hold_id);

  let action;
  if (busy === 'buying') {
    action = holdButton('buy-hold', 'Buying…', h, true);
  } else if (busy === 'releasing') {
    action = holdButton('release', 'Releasing…', h, true);
  } else if (h.status === 'HELD' && state.pendingRelease === h.hold_id) {
    action = el('div', { class: 'row-actions' },
      holdButton('confirm-release danger', 'Confirm release', h),
      holdButton('keep', 'Keep hold', h));
  } else if (h.status === 'HELD') {
    action = el('div', { class: 'row-actions' },
      holdButton('buy-hold', 'Buy', h),
      holdButton('release secondary', 'Release', h));
  } else {
    action = el('span', { class: 'muted' }, '—');
  }

  let left;
  if (h.status === 'HELD' && !Number.isNaN(h.expires)) {
    left = el('td', { class: 'hold-time' }, formatDuration(h.expires - now));
    state.holdClocks.set(h.hold_id, { cell: left, expires: h.expires });
  } else {
    left = el('td', { class: 'hold-time' }, el('span', { class: 'muted' }, h.status === 'EXPIRED' ? 'Expired' : '—'));
  }

  row.append(
    el('th', { scope: 'row' }, h.name),
    el('td', {}, String(h.quantity)),
    el('td', {}, money(Number(h.unit_price) * Number(h.quantity))),
    el('td', { class: 'hold-status' }, HOLD_STATUS_TEXT[h.status] || String(h.status)),
    left,
    el('td', {}, action),
  );
  return row;
}

// focusOn: {holdId, cls} to focus after the redraw; by default whatever hold
// control had focus keeps it. fallback: where the focus goes when the
// control it was on is gone (a hold that ran out meanwhile); none when a
// purchase or release starts (its end places the focus).
function renderHolds(focusOn = null, fallback = ui.holdsHeading) {
  if (!state.customer || !state.holds) return;
  const now = serverNow();
  const holds = holdsView(now);
  // Holds shown counting down until now that have run out: said once, and
  // the list reloaded if only our clock knows it yet.
  const ranOut = holds.filter((h) => h.status === 'EXPIRED' && state.holdClocks.has(h.hold_id));
  if (ranOut.length) {
    const what = ranOut.map((h) => `${h.quantity} × ${h.name}`);
    ui.holdsStatus.textContent = what.length === 1
      ? `Your hold of ${what[0]} has expired.`
      : `Your holds of ${what.join(', ')} have expired.`;
    if (ranOut.some((h) => h.lapsed)) loadHolds();
  }
  if (state.pendingRelease && !holds.some((h) => h.hold_id === state.pendingRelease && h.status === 'HELD')) {
    state.pendingRelease = null;
  }
  const signature = JSON.stringify([holds, state.pendingRelease, [...state.holdBusy]]);
  if (signature === state.holdsSignature && !focusOn) return;
  state.holdsSignature = signature;

  const active = document.activeElement;
  const hadFocus = Boolean(active && ui.holdsBody.contains(active));
  if (!focusOn && hadFocus) {
    const row = active.closest('tr');
    focusOn = { holdId: row && row.dataset.holdId, cls: active.classList[0] };
  }
  state.holdClocks.clear();
  ui.holdsBody.replaceChildren(...holds.map((h) => holdRow(h, now)));
  ui.holdsEmpty.hidden = holds.length > 0;

  if (focusOn && !refocus(ui.holdsBody, 'holdId', focusOn.holdId, focusOn.cls) && hadFocus && fallback) {
    fallback.focus();
  }
}

// The time left of each HELD hold, on the page's whole seconds. A hold
// that runs out is redrawn as Expired at once (renderHolds says so and
// reloads the list).
function tickHolds(now) {
  let lapsed = false;
  for (const clock of state.holdClocks.values()) {
    if (clock.expires <= now) {
      lapsed = true;
    } else {
      const text = formatDuration(clock.expires - now);
      if (clock.cell.textContent !== text) clock.cell.textContent = text;
    }
  }
  if (lapsed) renderHolds();
}

ui.holdsBody.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  const row = button && button.closest('tr');
  if (!row || button.disabled) return;
  const holdId = row.dataset.holdId;
  if (button.classList.contains('buy-hold')) {
    buyHold(holdId);
  } else if (button.classList.contains('release')) {
    state.pendingRelease = holdId;
    renderHolds({ holdId, cls: 'confirm-release' });
  } else if (button.classList.contains('keep')) {
    state.pendingRelease = null;
    renderHolds({ holdId, cls: 'release' });
  } else if (button.classList.contains('confirm-release')) {
    releaseHold(holdId);
  }
});

// Buying a hold is an order like Buy now's: the same key re-sent on every
// retry, the same outcomes (placeOrder), plus the hold's own refusals.
async function buyHold(holdId) {
  const hold = findHold(holdId);
  if (!hold || hold.status !== 'HELD' || !state.customer || state.holdBusy.has(holdId)) return;
  const item = { name: productName(hold.product_id), quantity: hold.quantity, hold: true };
  const body = JSON.stringify({ hold_id: holdId, idempotency_key: newIdempotencyKey() });

  if (state.pendingRelease === holdId) state.pendingRelease = null;
  state.holdBusy.set(holdId, 'buying');
  renderHolds(null, null);
  showResult('in_progress', `In progress… buying your hold of ${item.quantity} × ${item.name}.`);
  try {
    // Shown bought at once; the list reloaded below confirms it.
    if (await placeOrder(body, item)) setHoldStatus(holdId, 'CONSUMED');
  } finally {
    rowSettled(() => state.holdBusy.delete(holdId), renderHolds, loadHolds);
  }
}

async function releaseHold(holdId) {
  const hold = findHold(holdId);
  if (!hold || !state.customer || state.holdBusy.has(holdId)) return;
  const what = `${hold.quantity} × ${productName(hold.product_id)}`;
  state.pendingRelease = null;
  state.holdBusy.set(holdId, 'releasing');
  renderHolds(null, null);
  try {
    const path = `/holds/${encodeURIComponent(holdId)}/release`;
    await giveBack(path, { verb: 'release', noun: 'hold', of: what, list: 'My holds' }, (r) => {
      if (r.status === 200) {
        setHoldStatus(holdId, 'RELEASED');
        showResult('released', `Hold released: ${what}.`, restoredDetail(r));
      } else if (r.status === 409 && r.data.reason === 'hold_expired') {
        showResult('error', `This hold has expired: ${what} was no longer reserved for you.`);
      } else if (r.status === 409 && r.data.reason === 'hold_not_active') {
        showResult('error', `This hold was already bought or released: ${what}.`,
          { detail: 'Check My orders and My holds.' });
      } else {
        return false;
      }
      return true;
    });
  } finally {
    rowSettled(() => state.holdBusy.delete(holdId), renderHolds, loadHolds);
  }
}

// ----------------------------------------------------------------- sessions

function setSignedIn(customer) {
  state.customer = customer;
  ui.signedOut.hidden = true;
  ui.signedIn.hidden = false;
  ui.whoami.replaceChildren('Signed in as ', el('strong', {}, customer.email));
  ui.orders.hidden = false;
  ui.holds.hidden = false;
  refreshCards();
  return Promise.all([loadOrders(), loadHolds()]);
}

function setSignedOut() {
  state.customer = null;
  state.orders = null;
  state.ordersSignature = '';
  state.pendingCancel = null;
  ui.signedIn.hidden = true;
  ui.whoami.textContent = '';
  ui.signedOut.hidden = false;
  ui.orders.hidden = true;
  ui.ordersBody.replaceChildren();
  state.holds = null;
  state.holdsSignature = '';
  state.pendingRelease = null;
  state.holdClocks.clear();
  ui.holds.hidden = true;
  ui.holdsBody.replaceChildren();
  ui.holdsStatus.textContent = '';
  refreshCards();
}

function sessionExpired() {
  const wasIn = state.customer !== null;
  setSignedOut();
  const text = 'Your session expired, please log in again.';
  showResult('error', text);
  setAuthMessage(text, 'error');
  if (wasIn) focusIfLost(ui.loginEmail);
}

async function loadSession() {
  try {
    const r = await request('GET', '/sessions/current');
    if (r.status === 200 && r.data.email) {
      await setSignedIn({ customer_id: r.data.customer_id, email: r.data.email });
      return;
    }
  } catch {
    setAuthMessage('Could not check whether you are signed in. Reload the page to try again.', 'error');
  }
  setSignedOut();
}

const BUSY_TEXT = 'Too many attempts right now, please try again in a moment.';

ui.signupForm.addEventListener('submit', async (event) => {
  event.preventDefault(); // the browser has already checked required, minlength and type
  const email = ui.signupEmail.value.trim();
  ui.signupSubmit.disabled = true;
  setAuthMessage('Creating your account…');
  try {
    const r = await request('POST', '/customers', JSON.stringify({ email, password: ui.signupPassword.value }));
    if (r.status === 201) {
      ui.signupForm.reset();
      ui.loginEmail.value = email;
      setAuthMessage('Account created, you can log in now');
      ui.loginPassword.focus();
    } else if (r.status === 409) {
      setAuthMessage('An account with this email already exists. Log in instead.', 'error');
    } else if (r.status === 429 || r.status === 503) {
      setAuthMessage(BUSY_TEXT, 'error');
    } else {
      setAuthMessage(`Could not create the account: ${apiError(r.data, `the server answered ${r.status}`)}`, 'error');
    }
  } catch {
    setAuthMessage('Could not reach the shop, please try again.', 'error');
  } finally {
    ui.signupSubmit.disabled = false;
  }
});

ui.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = ui.loginEmail.value.trim();
  ui.loginSubmit.disabled = true;
  setAuthMessage('Logging in…');
  try {
    const r = await request('POST', '/sessions', JSON.stringify({ email, password: ui.loginPassword.value }));
    if (r.status === 201) {
      ui.loginForm.reset();
      ui.signupForm.reset();
      setAuthMessage('You are logged in.');
      setSignedIn({ customer_id: r.data.customer_id, email });
      ui.whoami.focus(); // the form the focus was in is gone
    } else if (r.status === 401) {
      setAuthMessage('Wrong email or password.', 'error');
    } else if (r.status === 429 || r.status === 503) {
      setAuthMessage(BUSY_TEXT, 'error');
    } else {
      setAuthMessage(`Could not log in: ${apiError(r.data, `the server answered ${r.status}`)}`, 'error');
    }
  } catch {
    setAuthMessage('Could not reach the shop, please try again.', 'error');
  } finally {
    ui.loginSubmit.disabled = false;
  }
});

ui.logout.addEventListener('click', async () => {
  ui.logout.disabled = true;
  try {
    await request('DELETE', '/sessions/current');
  } catch {
    // Shown as logged out either way; the cookie dies with the session.
  } finally {
    ui.logout.disabled = false;
  }
  setSignedOut();
  setAuthMessage('You are logged out.');
  ui.loginEmail.focus();
});

// -------------------------------------------------------------------- start

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    refreshSales();
    loadOrders();
    loadHolds();
  } else {
    clearTimeout(salesTimer);
  }
});

// Orders change on their own too (payment status), and holds run out or are
// made elsewhere: refresh now and then.
setInterval(() => {
  if (document.visibilityState === 'visible' && state.customer) {
    loadOrders();
    loadHolds();
  }
}, ORDERS_REFRESH_MS);

async function start() {
  tick();
  // loadSession also waits for the signed-in buyer's first orders and holds.
  await Promise.allSettled([loadSession(), refreshSales()]);
  document.body.dataset.ready = 'true';
}

start();
