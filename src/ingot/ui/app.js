// ingot web page: collections, uploads with job progress, RAG chat with citations.
//
// Plain modern JS, no build step and no dependencies (the server is offline-first).
// Security rule for this file: document text, file names and model output are untrusted;
// they only ever reach the page as text nodes (el(), textContent, append(string)),
// never through innerHTML. The server adds a Content-Security-Policy as a second fence.
'use strict';

const SETTINGS_KEY = 'ingot.settings';
const COLLECTION_KEY = 'ingot.collection';
const HISTORY_LIMIT = 10;      // past messages sent with a question: keeps the prompt inside small contexts
const POLL_MS = 800;           // job polling interval
const JOBS_SHOWN = 5;          // recent jobs listed per collection
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;  // collection names (docs/api.md)

const DEFAULT_SETTINGS = { apiKey: '', model: '', topK: 5, maxTokens: 512, mode: 'hybrid', rerank: 'default' };

const state = {
  settings: loadSettings(),
  collections: [],
  collection: localStorage.getItem(COLLECTION_KEY) || '',
  history: [],            // [{role, content}] of the current conversation
  polls: new Map(),       // job id -> timer of its next poll
  streaming: null,        // AbortController of the answer being streamed, if any
  conversation: 0,        // bumped by "New chat": a late answer must not join the new history
  turns: 0,               // numbers answers, so citation anchors are unique on the page
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// DOM helpers

/** Create an element; children that are strings become text nodes (never parsed as HTML). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false && child !== '') node.append(child);
  }
  return node;
}

function formatTime(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : '';
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------
// Settings (localStorage; the API key never leaves this browser except in the header)

function loadSettings() {
  try {
    return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

function saveSettings(settings) {
  state.settings = settings;
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

async function openSettings() {
  const s = state.settings;
  $('api-key').value = s.apiKey;
  $('top-k').value = s.topK;
  $('max-tokens').value = s.maxTokens;
  $('search-mode').value = s.mode;
  $('rerank').value = s.rerank;
  $('settings').showModal();
  await loadModels(s.model);
}

/** Fill the model picker with the server's chat models (kind "chat" in /v1/models). */
async function loadModels(selected) {
  const select = $('model-select');
  try {
    const { data } = await apiJson('/v1/models');
    const chat = data.filter((m) => m.kind === 'chat' || m.kind === undefined);
    select.replaceChildren(el('option', { value: '', text: 'server default' }),
      ...chat.map((m) => el('option', { value: m.id, text: m.id })));
    select.value = chat.some((m) => m.id === selected) ? selected : '';
  } catch (err) {
    showError(err);
  }
}

function onSettingsSave(event) {
  event.preventDefault();
  const intIn = (id, lo, hi, fallback) => {
    const n = Number.parseInt($(id).value, 10);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
  };
  saveSettings({
    apiKey: $('api-key').value.trim(),
    model: $('model-select').value,
    topK: intIn('top-k', 1, 50, DEFAULT_SETTINGS.topK),
    maxTokens: intIn('max-tokens', 16, 4096, DEFAULT_SETTINGS.maxTokens),
    mode: $('search-mode').value,
    rerank: $('rerank').value,
  });
  $('settings').close();
  // A new key may open collections the old one could not see.
  loadCollections();
}

// ---------------------------------------------------------------------------------------
// HTTP: every call carries the key; every failure becomes an ApiError with the server's message

class ApiError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  return state.settings.apiKey ? { Authorization: `Bearer ${state.settings.apiKey}` } : {};
}

/** Turn an error body (OpenAI envelope, or anything else) into an ApiError. */
function errorFromBody(status, statusText, text) {
  let message = `${status} ${statusText || 'error'}`.trim();
  let code = null;
  try {
    const body = JSON.parse(text);
    if (body?.error?.message) {
      message = body.error.message;
      code = body.error.code ?? null;
    } else if (typeof body?.detail === 'string') {
      message = body.detail;
    }
  } catch {
    if (text && text.length < 300) message = `${message}: ${text}`;
  }
  if (status === 401) message += ' (check the API key in Settings)';
  return new ApiError(message, status, code);
}

async function api(path, { method = 'GET', json, body, signal } = {}) {
  const headers = { ...authHeaders() };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(`cannot reach the server: ${err.message}`);
  }
  if (!response.ok) throw errorFromBody(response.status, response.statusText, await response.text());
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  return response.status === 204 ? null : response.json();
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------
// Page-level status and errors

function showError(err) {
  if (err?.name === 'AbortError') return;
  $('alert-text').textContent = err instanceof Error ? err.message : String(err);
  $('alert').hidden = false;
}

function clearError() {
  $('alert').hidden = true;
  $('alert-text').textContent = '';
}

/** Poll readiness until the models are loaded, so the user knows why a question would wait. */
async function checkHealth() {
  const badge = $('server-status');
  try {
    const response = await fetch('/v1/health/ready');
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      badge.dataset.state = 'ready';
      badge.textContent = 'server ready';
      return;
    }
    badge.dataset.state = 'loading';
    badge.textContent = body.message || 'server not ready';
  } catch {
    badge.dataset.state = 'down';
    badge.textContent = 'server unreachable';
  }
  setTimeout(checkHealth, 3000);
}

// ---------------------------------------------------------------------------------------
// Collections

async function loadCollections() {
  try {
    const { data } = await apiJson('/v1/collections');
    state.collections = data;
  } catch (err) {
    state.collections = [];
    showError(err);
    // Keys are on and this browser has none (or a wrong one): the fix is in Settings.
    if (err.status === 401 && !$('settings').open) openSettings();
  }
  renderCollectionSelect();
  const names = state.collections.map((c) => c.name);
  selectCollection(names.includes(state.collection) ? state.collection : (names[0] || ''));
}

function renderCollectionSelect() {
  const select = $('collection-select');
  select.dataset.loaded = 'true';  // tells tests (and styles) the first listing has arrived
  if (state.collections.length === 0) {
    select.replaceChildren(el('option', { value: '', text: '(no collections yet)' }));
    select.disabled = true;
    $('new-collection').open = true;  // the only useful next step
    return;
  }
  select.replaceChildren(...state.collections.map((c) => el('option', { value: c.name, text: c.name })));
  select.disabled = false;
}

function selectCollection(name) {
  const changed = name !== state.collection;
  state.collection = name;
  if (name) localStorage.setItem(COLLECTION_KEY, name);
  $('collection-select').value = name;
  $('chat-collection').textContent = name ? `· ${name}` : '';
  $('delete-collection').disabled = !name;
  renderCollectionInfo();
  updateComposer();
  if (changed) {
    newChat();  // answers from another collection would mislead the next question
    stopAllPolls();
    $('jobs').replaceChildren();
  }
  loadDocuments();
  loadJobs();
}

function currentCollection() {
  return state.collections.find((c) => c.name === state.collection) || null;
}

function renderCollectionInfo() {
  const c = currentCollection();
  const info = $('collection-info');
  if (!c) {
    info.textContent = state.collections.length ? '' : 'Create a collection to hold your documents.';
    return;
  }
  const parts = [plural(c.documents ?? 0, 'document'), plural(c.chunks ?? 0, 'chunk')];
  if (c.embedding_model) parts.push(c.embedding_model);
  if (c.acl?.length) parts.push(`groups: ${c.acl.join(', ')}`);
  info.textContent = (c.description ? `${c.description} — ` : '') + parts.join(' · ');
}

/** Re-read the selected collection's counters after an ingest or delete. */
async function refreshCollection() {
  const name = state.collection;
  if (!name) return;
  try {
    const fresh = await apiJson(`/v1/collections/${enc(name)}`);
    state.collections = state.collections.map((c) => (c.name === name ? fresh : c));
    if (state.collection === name) renderCollectionInfo();
  } catch (err) {
    showError(err);
  }
}

async function onCreateCollection(event) {
  event.preventDefault();
  const nameInput = $('new-collection-name');
  const name = nameInput.value.trim();
  if (!NAME_RE.test(name)) {
    nameInput.setAttribute('aria-invalid', 'true');
    showError(new Error('Collection names use letters, digits and _, start with a letter, at most 63 characters.'));
    nameInput.focus();
    return;
  }
  nameInput.removeAttribute('aria-invalid');
  const description = $('new-collection-description').value.trim();
  const button = $('create-collection');
  button.disabled = true;
  try {
    const json = description ? { name, description } : { name };
    const created = await apiJson('/v1/collections', { method: 'POST', json });
    clearError();
    state.collections = [...state.collections.filter((c) => c.name !== created.name), created]
      .sort((a, b) => a.name.localeCompare(b.name));
    renderCollectionSelect();
    selectCollection(created.name);
    $('create-collection-form').reset();
    $('new-collection').open = false;
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

async function onDeleteCollection() {
  const name = state.collection;
  if (!name || !window.confirm(`Delete collection "${name}" and every document in it?`)) return;
  try {
    await apiJson(`/v1/collections/${enc(name)}`, { method: 'DELETE' });
    clearError();
    localStorage.removeItem(COLLECTION_KEY);
    state.collection = '';
    await loadCollections();
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------------------------------
// Documents

async function loadDocuments() {
  const name = state.collection;
  const list = $('documents');
  if (!name) {
    list.replaceChildren();
    $('documents-count').textContent = '';
    return;
  }
  try {
    const { data } = await apiJson(`/v1/collections/${enc(name)}/documents`);
    if (state.collection !== name) return;  // the user switched while we waited
    $('documents-count').textContent = plural(data.length, 'document');
    list.replaceChildren(...(data.length
      ? data.map(documentItem)
      : [el('li', { class: 'muted small', text: 'No documents yet: add some above.' })]));
  } catch (err) {
    showError(err);
  }
}

function documentItem(doc) {
  const meta = [doc.format, doc.pages != null && plural(doc.pages, 'page'), plural(doc.chunks ?? 0, 'chunk'),
    doc.updated_at && `updated ${formatTime(doc.updated_at)}`].filter(Boolean).join(' · ');
  return el('li', { class: 'document', dataset: { documentId: doc.id, source: doc.source } },
    el('div', { class: 'document-text' },
      el('span', { class: 'document-source', title: doc.source, text: doc.source }),
      el('span', { class: 'muted small', text: meta })),
    el('button', {
      type: 'button', class: 'danger secondary small', 'aria-label': `Delete ${doc.source}`,
      onclick: () => deleteDocument(doc),
    }, 'Delete'));
}

async function deleteDocument(doc) {
  if (!window.confirm(`Delete "${doc.source}" from ${state.collection}?`)) return;
  try {
    await apiJson(`/v1/collections/${enc(state.collection)}/documents/${enc(doc.id)}`, { method: 'DELETE' });
    clearError();
    await Promise.all([loadDocuments(), refreshCollection()]);
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------------------------------
// Uploads and ingestion jobs

/**
 * Upload with XMLHttpRequest rather than fetch: it reports upload progress, which matters
 * for big PDFs on a slow link. The answer is the job (202), which we then poll.
 */
function uploadFiles(files) {
  files = Array.from(files || []);
  if (files.length === 0) return;
  const name = state.collection;
  if (!name) {
    showError(new Error('Choose or create a collection first.'));
    return;
  }
  const card = jobCard(`upload-${Date.now()}`);
  card.querySelector('.job-title').textContent = `Uploading ${plural(files.length, 'file')} to ${name}`;
  setBadge(card.querySelector('.job-status'), 'uploading');
  const rows = files.map((f) => fileRow({ filename: f.name, status: 'uploading' }));
  card.querySelector('.job-files').replaceChildren(...rows);

  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/v1/collections/${enc(name)}/documents`);
  for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
  const progress = card.querySelector('.job-progress');
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) progress.value = e.loaded / e.total;
  });
  xhr.addEventListener('load', () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      const job = JSON.parse(xhr.responseText);
      card.remove();
      clearError();
      renderJob(job);
      if (job.status !== 'done') pollJob(job.id);
      else onJobDone();
    } else {
      failUpload(card, errorFromBody(xhr.status, xhr.statusText, xhr.responseText));
    }
  });
  xhr.addEventListener('error', () => failUpload(card, new ApiError('upload failed: cannot reach the server')));
  xhr.send(form);
}

function failUpload(card, err) {
  setBadge(card.querySelector('.job-status'), 'failed');
  card.querySelector('.job-files').replaceChildren(el('li', { class: 'error small', text: err.message }));
  showError(err);
}

/** The job's card, created (newest first) if it is not on the page yet. */
function jobCard(id) {
  const jobs = $('jobs');
  let card = jobs.querySelector(`[data-job-id="${CSS.escape(id)}"]`);
  if (!card) {
    card = $('job-template').content.firstElementChild.cloneNode(true);
    card.dataset.jobId = id;
    jobs.prepend(card);
    while (jobs.children.length > JOBS_SHOWN) jobs.lastElementChild.remove();
  }
  return card;
}

function setBadge(badge, status) {
  badge.textContent = status;
  badge.dataset.status = status;
}

function renderJob(job) {
  const card = jobCard(job.id);
  card.dataset.status = job.status;
  const p = job.progress || { total: job.documents?.length || 0, finished: 0, failed: 0 };
  // The server counts failed files among the finished ones.
  const ok = Math.max(0, p.finished - p.failed);
  card.querySelector('.job-title').textContent =
    [plural(p.total, 'file'), `${ok} done`, p.failed && `${p.failed} failed`, formatTime(job.created_at)]
      .filter(Boolean).join(' · ');
  setBadge(card.querySelector('.job-status'), job.status === 'done' && p.failed ? 'done with errors' : job.status);
  const progress = card.querySelector('.job-progress');
  progress.max = Math.max(1, p.total);
  progress.value = p.finished;
  progress.setAttribute('aria-label', `${p.finished} of ${p.total} files processed`);
  card.querySelector('.job-files').replaceChildren(...(job.documents || []).map(fileRow));
}

/** One file of a job: its status, and the stage, outcome or error that explains it. */
function fileRow(doc) {
  let detail = '';
  if (doc.status === 'running') detail = doc.stage ? `${doc.stage}…` : 'working…';
  else if (doc.status === 'done') {
    detail = [doc.action, doc.pages != null && plural(doc.pages, 'page'),
      doc.chunks != null && plural(doc.chunks, 'chunk')].filter(Boolean).join(' · ');
  } else if (doc.status === 'failed') {
    const e = doc.error || {};
    detail = [e.reason, e.message].filter(Boolean).join(': ') || 'failed';
  }
  const badge = el('span', { class: 'badge' });
  setBadge(badge, doc.status);
  const dataset = { filename: doc.filename, status: doc.status, action: doc.action || '' };
  const detailClass = doc.status === 'failed' ? 'job-file-detail error' : 'job-file-detail muted';
  return el('li', { class: 'job-file', dataset },
    el('span', { class: 'job-file-name', title: doc.filename, text: doc.filename }),
    badge,
    detail && el('span', { class: detailClass, text: detail }));
}

async function pollJob(id) {
  state.polls.delete(id);
  try {
    const job = await apiJson(`/v1/jobs/${enc(id)}`);
    if (job.collection && job.collection !== state.collection) return;  // user moved on
    renderJob(job);
    if (job.status === 'done') {
      onJobDone();
      return;
    }
  } catch (err) {
    showError(err);
    if (err.status === 404) return;  // job gone: nothing left to watch
  }
  state.polls.set(id, setTimeout(() => pollJob(id), POLL_MS));
}

function stopAllPolls() {
  for (const timer of state.polls.values()) clearTimeout(timer);
  state.polls.clear();
}

function onJobDone() {
  loadDocuments();
  refreshCollection();
}

/** Recent jobs of the collection; unfinished ones resume polling (e.g. after a reload). */
async function loadJobs() {
  const name = state.collection;
  if (!name) return;
  try {
    const { data } = await apiJson(`/v1/jobs?collection=${enc(name)}`);
    if (state.collection !== name) return;
    // Oldest first, so that prepending leaves the newest on top.
    for (const job of data.slice(0, JOBS_SHOWN).reverse()) {
      renderJob(job);
      if (job.status !== 'done' && !state.polls.has(job.id)) pollJob(job.id);
    }
  } catch (err) {
    // Listing jobs is a convenience; a server without it should not block the page.
    if (err.status !== 404 && err.status !== 405) showError(err);
  }
}

function setupDropzone() {
  const zone = $('dropzone');
  const input = $('file-input');
  $('choose-files').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    uploadFiles(input.files);
    input.value = '';  // choosing the same file again must fire change again
  });
  const active = (on) => (event) => {
    event.preventDefault();
    zone.dataset.active = String(on);
  };
  zone.addEventListener('dragenter', active(true));
  zone.addEventListener('dragover', active(true));
  zone.addEventListener('dragleave', active(false));
  zone.addEventListener('drop', (event) => {
    active(false)(event);
    uploadFiles(event.dataTransfer?.files);
  });
  // Files dropped outside the zone would otherwise make the browser navigate away.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}

// ---------------------------------------------------------------------------------------
// Chat: RAG answers streamed over SSE, with [n] markers linked to their citations

function updateComposer() {
  const busy = state.streaming !== null;
  $('send').disabled = busy || !state.collection;
  $('stop').hidden = !busy;
  $('chat-input').placeholder = state.collection
    ? 'Ask about your documents… (Enter to send, Shift+Enter for a new line)'
    : 'Create or choose a collection first';
}

function newChat() {
  state.streaming?.abort();
  state.conversation += 1;
  state.history = [];
  $('messages').replaceChildren($('chat-empty') || emptyHint());
}

function emptyHint() {
  return el('p', { id: 'chat-empty', class: 'muted empty',
    text: 'Choose a collection, add documents, then ask a question. Answers cite their sources as [1], [2]…' });
}

function ragRequest(messages) {
  const s = state.settings;
  const body = {
    messages,
    stream: true,
    collections: [state.collection],
    top_k: s.topK,
    mode: s.mode,
    max_tokens: s.maxTokens,
  };
  if (s.model) body.model = s.model;
  if (s.rerank !== 'default') body.rerank = s.rerank === 'on';
  return body;
}

/** Append a message bubble; the assistant's has a body, a citation list and a status line. */
function addMessage(role, text = '') {
  $('chat-empty')?.remove();
  const turn = ++state.turns;
  const body = el('div', { class: 'message-body', text });
  const dataset = { turn, state: role === 'user' ? 'done' : 'waiting' };
  const message = el('article', { class: `message ${role}`, dataset },
    el('h3', { class: 'visually-hidden', text: role === 'user' ? 'You' : 'Answer' }),
    body);
  const view = { turn, message, body, citations: null, status: null };
  if (role === 'assistant') {
    message.setAttribute('aria-busy', 'true');
    view.status = el('p', { class: 'message-status muted small', text: 'searching your documents…' });
    view.citations = el('ol', { class: 'citations', 'aria-label': 'Sources' });
    message.append(view.status, el('section', { class: 'sources' }, view.citations));
  }
  $('messages').append(message);
  scrollToEnd(role === 'user');  // a new question always brings the reader to the bottom
  return view;
}

function scrollToEnd(force = false) {
  const box = $('messages');
  // Follow the stream only if the reader is already near the bottom (not reading above).
  if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 160) box.scrollTop = box.scrollHeight;
}

async function ask(question) {
  if (state.streaming || !question.trim()) return;
  if (!state.collection) {
    showError(new Error('Choose or create a collection first.'));
    return;
  }
  const userMessage = { role: 'user', content: question };
  const conversation = state.conversation;
  const remember = (answer) => {
    if (conversation === state.conversation) state.history.push(userMessage, { role: 'assistant', content: answer });
  };
  addMessage('user', question);
  const view = addMessage('assistant');
  const controller = new AbortController();
  state.streaming = controller;
  updateComposer();

  let text = '';
  let citations = [];
  const render = () => renderAnswer(view.body, text, citations, view.turn);
  try {
    const response = await api('/v1/rag/chat/completions', {
      method: 'POST',
      json: ragRequest([...state.history.slice(-HISTORY_LIMIT), userMessage]),
      signal: controller.signal,
    });
    if ((response.headers.get('content-type') || '').includes('application/json')) {
      // A server may answer without streaming (e.g. nothing relevant found): same fields, one object.
      const full = await response.json();
      text = full.choices?.[0]?.message?.content || '';
      citations = full.citations || [];
    } else {
      view.status.textContent = 'writing…';
      for await (const data of sseData(response)) {
        if (data === '[DONE]') break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(chunk.error.message || 'the answer failed', 0, chunk.error.code);
        if (Array.isArray(chunk.citations)) {
          citations = chunk.citations;
          renderCitations(view.citations, citations, view.turn);
        }
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          text += delta;
          render();
          scrollToEnd();
        }
      }
    }
    render();
    renderCitations(view.citations, citations, view.turn);
    finishMessage(view, 'done', citations.length ? '' : 'No sources were cited.');
    remember(text);
    clearError();
  } catch (err) {
    render();
    if (err.name === 'AbortError') {
      finishMessage(view, 'stopped', 'stopped');
      // Keep a stopped answer in the history: the user saw it and may refer to it.
      if (text) remember(text);
    } else {
      finishMessage(view, 'error', err.message);
      view.status.classList.add('error');
      view.status.setAttribute('role', 'alert');
      // Give the question back so the user can fix and resend it.
      if (!$('chat-input').value) $('chat-input').value = question;
    }
  } finally {
    state.streaming = null;
    updateComposer();
    scrollToEnd();
  }
}

function finishMessage(view, finalState, statusText) {
  view.message.dataset.state = finalState;
  view.message.removeAttribute('aria-busy');
  view.status.textContent = statusText;
  view.status.hidden = !statusText;
}

/** Yield the data payload of each server-sent event of a streamed response. */
async function* sseData(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let match;
    while ((match = /\r?\n\r?\n/.exec(buffer)) !== null) {
      const event = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      const data = event.split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) yield data;
    }
  }
}

/**
 * Render answer text into `target`: plain text, except [n] (or [n, m]) markers that name
 * a known citation, which become links to it. Unknown numbers stay as typed.
 */
function renderAnswer(target, text, citations, turn) {
  const known = new Set(citations.map((c) => c.index));
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)) {
    const numbers = match[1].split(',').map((n) => Number.parseInt(n, 10));
    if (!numbers.every((n) => known.has(n))) continue;
    out.append(text.slice(last, match.index), '[');
    numbers.forEach((n, i) => {
      if (i) out.append(', ');
      out.append(citationLink(n, turn));
    });
    out.append(']');
    last = match.index + match[0].length;
  }
  out.append(text.slice(last));
  target.replaceChildren(out);
}

function citationId(turn, index) {
  return `cite-${turn}-${index}`;
}

function citationLink(index, turn) {
  return el('a', {
    href: `#${citationId(turn, index)}`, class: 'cite-ref', 'aria-label': `source ${index}`,
    onclick: (event) => {
      event.preventDefault();
      const target = $(citationId(turn, index));
      if (!target) return;
      target.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      target.focus({ preventScroll: true });
      target.classList.remove('flash');
      void target.offsetWidth;  // restart the highlight animation
      target.classList.add('flash');
    },
  }, String(index));
}

/** "p. 3", "pp. 3–5", or "" when the format has no pages (HTML, Markdown, text). */
function pageLabel(citation) {
  const { page_start: start, page_end: end } = citation;
  if (start == null) return '';
  return end == null || end === start ? `p. ${start}` : `pp. ${start}–${end}`;
}

/**
 * Where in the file, besides the page: extractors set location "page N" for PDF pages
 * (a chunk over several: "page 4 – page 5"), which the page label already says; "slide N"
 * for slides; the sheet name for workbooks.
 */
function locationLabel(citation) {
  const location = citation.location;
  if (location == null || location === '') return '';
  const text = typeof location === 'string' ? location : JSON.stringify(location);
  return /^page \d+(\s*[–-]\s*page \d+)?$/i.test(text) ? '' : text;
}

/** The page label plus any other location; slides are numbered as pages, so say "slide". */
function placeLabel(citation) {
  const location = locationLabel(citation);
  if (/^slide \d+/i.test(location)) return location;
  return [pageLabel(citation), location].filter(Boolean).join(' · ');
}

function renderCitations(list, citations, turn) {
  const many = new Set(citations.map((c) => c.collection)).size > 1;
  list.replaceChildren(...citations.map((c) => {
    const snippet = el('blockquote', { class: 'cite-snippet', text: c.snippet || '' });
    const more = el('button', {
      type: 'button', class: 'link small', 'aria-expanded': 'false',
      onclick: () => {
        const open = snippet.classList.toggle('expanded');
        more.setAttribute('aria-expanded', String(open));
        more.textContent = open ? 'less' : 'more';
      },
    }, 'more');
    return el('li', { id: citationId(turn, c.index), class: 'citation', tabindex: '-1',
      dataset: { index: c.index, source: c.source, page: pageLabel(c) } },
    el('div', { class: 'cite-head' },
      el('span', { class: 'cite-num', text: `[${c.index}]` }),
      el('span', { class: 'cite-source', title: c.source, text: c.source }),
      el('span', { class: 'cite-page', text: placeLabel(c) }),
      many && el('span', { class: 'cite-collection muted', text: c.collection })),
    snippet, more);
  }));
  list.hidden = citations.length === 0;
  // "more" only where the snippet is actually cut off (needs layout, hence the next frame).
  requestAnimationFrame(() => {
    for (const snippet of list.querySelectorAll('.cite-snippet:not(.expanded)')) {
      snippet.nextElementSibling.hidden = snippet.scrollHeight <= snippet.clientHeight + 1;
    }
  });
}

// ---------------------------------------------------------------------------------------
// Wiring

function setupChat() {
  const input = $('chat-input');
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || state.streaming) return;
    input.value = '';
    ask(question);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('chat-form').requestSubmit();
    }
  });
  $('stop').addEventListener('click', () => state.streaming?.abort());
  $('new-chat').addEventListener('click', () => {
    newChat();
    input.focus();
  });
}

function init() {
  $('alert-close').addEventListener('click', clearError);
  $('open-settings').addEventListener('click', openSettings);
  $('settings-form').addEventListener('submit', onSettingsSave);
  $('settings-cancel').addEventListener('click', () => $('settings').close());
  $('collection-select').addEventListener('change', (e) => selectCollection(e.target.value));
  $('refresh-collections').addEventListener('click', loadCollections);
  $('create-collection-form').addEventListener('submit', onCreateCollection);
  $('delete-collection').addEventListener('click', onDeleteCollection);
  setupDropzone();
  setupChat();
  updateComposer();
  checkHealth();
  loadCollections();
}

// Exposed for the browser test, which checks the escaping and linking of answer text.
window.ingotUI = Object.freeze({ renderAnswer, renderCitations, placeLabel });

document.addEventListener('DOMContentLoaded', init);
