/* global document, window, location, sessionStorage, fetch, crypto, setTimeout, clearTimeout */
// The stategate chat widget: plain ES module, no build step. It asks the demo endpoint for a client
// token scoped to one conversation, then talks to the gateway with the SDK's browser bundle.
import { StateSetClient } from '/widget/sdk.js';

const STORAGE_KEY = 'stategate.widget.visit';
/** A typing indicator with no news for this long goes away on its own. */
const TYPING_TIMEOUT_MS = 6000;
/** The widget says "typing" at most this often. */
const TYPING_SEND_INTERVAL_MS = 2500;
/** Tokens live an hour: renewed this long before they expire. */
const RENEW_BEFORE_MS = 5 * 60_000;

const $ = (id) => document.getElementById(id);
const list = $('messages');
const form = $('composer');
const input = $('input');
const sendButton = $('send');
const banner = $('banner');
const typingIndicator = $('typing');
const presenceLine = $('presence');
const notice = $('notice');

/** Message id -> its bubble: every message is shown once, whichever way it arrived first. */
const shown = new Map();
/** The widget's own messages not yet confirmed, by the client id they carry in metadata. */
const pending = new Map();
/** Replies being streamed: stream id -> { bubble, index (last delta applied), text }. */
const streaming = new Map();
/** Who else is in the conversation (the agent worker, a human agent). */
const others = new Set();

let visit = null;
let typingTimer = null;
let lastTypingSent = 0;
let everConnected = false;

/**
 * Bubbles stay in the order the gateway stores messages (by creation time), whatever order they
 * arrived in after a reconnect; replies being streamed sit at their start time, and messages not
 * yet confirmed stay at the bottom.
 */
const PENDING_KEY = '\uffff';

function place(item, sortKey) {
  item.dataset.sortKey = sortKey;
  const after = [...list.children].find((other) => other !== item && other.dataset.sortKey > sortKey);
  if (after) list.insertBefore(item, after);
  else list.append(item);
  list.scrollTop = list.scrollHeight;
}

function bubble(role, text, sortKey, classes = []) {
  const item = document.createElement('li');
  item.className = ['message', role, ...classes].join(' ');
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(body);
  place(item, sortKey);
  return item;
}

function setText(item, text) {
  item.querySelector('.text').textContent = text;
  list.scrollTop = list.scrollHeight;
}

function setMeta(item, text) {
  let meta = item.querySelector('.meta');
  if (!meta) {
    meta = document.createElement('span');
    meta.className = 'meta';
    item.append(meta);
  }
  meta.textContent = text;
}

/** A stored message: shown once, taking over its pending or streaming bubble when it has one. */
function showMessage(message, streamId) {
  if (shown.has(message.id)) return;
  let item;
  const clientId = message.metadata?.client_id;
  if (clientId && pending.has(clientId)) {
    item = pending.get(clientId);
    pending.delete(clientId);
    item.classList.remove('pending', 'failed');
    item.querySelector('.meta')?.remove();
  } else if (streamId && streaming.has(streamId)) {
    item = streaming.get(streamId).bubble;
    streaming.delete(streamId);
    item.classList.remove('streaming');
  } else {
    item = bubble(message.role, message.content, message.created_at);
  }
  setText(item, message.content);
  place(item, message.created_at);
  item.dataset.messageId = message.id;
  shown.set(message.id, item);
  if (message.role !== 'user') hideTyping();
}

function streamStarted(streamId, role = 'agent', startedAt = new Date().toISOString(), text = '', index = -1) {
  if (streaming.has(streamId)) return streaming.get(streamId);
  const entry = { bubble: bubble(role, text, startedAt, ['streaming']), index, text };
  entry.bubble.dataset.streamId = streamId;
  streaming.set(streamId, entry);
  hideTyping();
  return entry;
}

function streamDelta({ stream_id: streamId, index, delta }) {
  const entry = streaming.get(streamId) ?? streamStarted(streamId);
  // A delta already applied (from a snapshot or a replay) is skipped.
  if (index <= entry.index) return;
  entry.index = index;
  entry.text += delta;
  setText(entry.bubble, entry.text);
}

function showTyping() {
  typingIndicator.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
}

function hideTyping() {
  clearTimeout(typingTimer);
  typingIndicator.hidden = true;
}

function renderPresence() {
  const online = others.size > 0;
  presenceLine.dataset.online = String(online);
  presenceLine.querySelector('.label').textContent = online ? 'Agent online' : 'Agent offline';
}

function onEvent(frame) {
  const { event, data } = frame;
  switch (event) {
    case 'message.created':
      showMessage(data.message, data.stream_id);
      break;
    case 'message.stream_started':
      streamStarted(data.stream_id, data.role, data.started_at);
      break;
    case 'message.delta':
      streamDelta(data);
      break;
    case 'message.stream_failed': {
      const entry = streaming.get(data.stream_id);
      if (entry) {
        entry.bubble.classList.replace('streaming', 'failed');
        setMeta(entry.bubble, 'The reply could not be stored');
        streaming.delete(data.stream_id);
      }
      break;
    }
    case 'typing':
      if (data.subject !== visit.subject) (data.typing ? showTyping : hideTyping)();
      break;
    case 'presence.joined':
      if (data.subject !== visit.subject) others.add(data.subject);
      renderPresence();
      break;
    case 'presence.left':
      others.delete(data.subject);
      renderPresence();
      break;
  }
}

/** A visit (token + conversation) kept for the tab's life, so a reload shows the same conversation. */
async function getVisit() {
  const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
  const left = saved ? Date.parse(saved.expires_at) - Date.now() : 0;
  if (left > RENEW_BEFORE_MS) return saved;
  // A token about to expire is renewed for the same conversation; an expired one starts a new visit.
  if (left > 0) return (await requestVisit(saved.token).catch(() => null)) ?? requestVisit();
  return requestVisit();
}

/** POST /v1/demo/widget: a new visit, or with the current token the same visit with a fresh one. */
async function requestVisit(token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const response = await fetch('/v1/demo/widget', { method: 'POST', headers });
  const body = await response.json().catch(() => null);
  if (!response.ok || !body?.success) {
    const reason =
      response.status === 404 ? 'The demo endpoint is off (set DEMO_WIDGET=true on the gateway).' : (body?.error?.message ?? `HTTP ${response.status}`);
    throw new Error(reason);
  }
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(body.data));
  return body.data;
}

/** Renews the token before it expires, for as long as the page stays open; `onRenewed` gets the new visit. */
function renewBeforeExpiry(onRenewed) {
  const wait = Math.max(0, Date.parse(visit.expires_at) - Date.now() - RENEW_BEFORE_MS);
  setTimeout(async () => {
    try {
      const renewed = await requestVisit(visit.token);
      if (renewed.conversation_id === visit.conversation_id) {
        visit = renewed;
        onRenewed(renewed);
      }
    } catch {
      // Offline or refused: the next try is in a minute; the connection keeps its token until then.
      visit = { ...visit, expires_at: new Date(Date.now() + RENEW_BEFORE_MS + 60_000).toISOString() };
    }
    renewBeforeExpiry(onRenewed);
  }, wait);
}

/** Every stored message, oldest first; merged with what is on screen (nothing shown twice). */
async function loadHistory(client) {
  for await (const message of client.messages.list({ conversation_id: visit.conversation_id, limit: 100 })) showMessage(message);
}

async function loadPresence(client) {
  const { members } = await client.presence.get({ topic: `conversation:${visit.conversation_id}` });
  others.clear();
  for (const member of members) if (member.subject !== visit.subject) others.add(member.subject);
  renderPresence();
}

function setConnection(state) {
  document.body.dataset.connection = state;
  if (state === 'connected') everConnected = true;
  banner.dataset.state = state;
  // Before the first connection there is nothing to reconnect: the banner is for losing it.
  banner.hidden = state === 'connected' || (!everConnected && state !== 'failed');
  banner.textContent = state === 'failed' ? 'Connection lost. Reload the page to try again.' : 'Reconnecting…';
}

async function send(rt, text) {
  const clientId = crypto.randomUUID();
  const item = bubble('user', text, `${PENDING_KEY}${Date.now()}`, ['pending']);
  pending.set(clientId, item);
  try {
    // Queued by the SDK while offline, sent once when the connection is back.
    const message = await rt.call('messages.create', { conversation_id: visit.conversation_id, content: text, metadata: { client_id: clientId } });
    showMessage(message);
  } catch (error) {
    if (pending.get(clientId) === item) {
      item.classList.replace('pending', 'failed');
      setMeta(item, `Not sent: ${error.message}`);
    }
  }
}

async function main() {
  visit = await getVisit();
  let client = new StateSetClient({ apiKey: visit.token, baseURL: location.origin });
  // Asked at every (re)connection: always the newest token.
  const rt = client.realtime({ token: async () => visit.token });
  renewBeforeExpiry((renewed) => {
    client = new StateSetClient({ apiKey: renewed.token, baseURL: location.origin });
  });
  rt.on('state', (state) => setConnection(state));
  setConnection(rt.state ?? 'connecting');

  // Events that arrive while the history loads wait, then apply on top of it.
  let buffered = [];
  const topicHandlers = {
    onEvent(frame) {
      if (buffered) buffered.push(frame);
      else onEvent(frame);
    },
    onResubscribed({ recovered }) {
      // Presence signals are not replayed: ask again. A history that could not be replayed is refetched.
      loadPresence(client).catch(() => {});
      if (!recovered) loadHistory(client).catch(() => {});
    },
  };
  await rt.connect();
  const subscription = await rt.subscribe(`conversation:${visit.conversation_id}`, topicHandlers);
  await Promise.all([loadHistory(client), loadPresence(client)]);
  // A reply being written when the page opened: its text so far, later deltas on top.
  for (const snapshot of subscription?.streams ?? subscription?.result?.streams ?? []) {
    streamStarted(snapshot.stream_id, snapshot.role, snapshot.started_at, snapshot.text, snapshot.index);
  }
  for (const frame of buffered) onEvent(frame);
  buffered = null;

  input.disabled = false;
  sendButton.disabled = false;
  input.focus();
  notice.hidden = false;
  notice.textContent = `Conversation ${visit.conversation_id}`;

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    void send(rt, text);
  });
  input.addEventListener('input', () => {
    // Typing is a live signal: not worth queueing while offline.
    if (rt.state !== 'connected' || Date.now() - lastTypingSent < TYPING_SEND_INTERVAL_MS) return;
    lastTypingSent = Date.now();
    rt.typing(visit.conversation_id).catch(() => {});
  });

  // For tests and the curious: the widget's connection and what it shows.
  window.stategateWidget = { rt, client, visit, shown, pending, streaming };
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  setConnection('failed');
  banner.textContent = `The widget could not start: ${error.message}`;
  document.body.dataset.error = error.message;
});
