// Cuba admin UI: building the page, formatting, the session and the admin API: what every view
// (app.js, browsers.js, builder.js) uses. Loaded first.
//
// Everything it shows (event fields, rule texts, alert messages) may come from an attacker, so
// data only ever reaches the page through `textContent`, attribute setters and SVG attributes.
// Nothing here hands a string to the HTML parser, and there are no inline handlers; the
// server's CSP forbids inline script besides.
"use strict";

const API = "/admin/api";
const TOKEN_KEY = "cuba-admin-token";
const SVG_NS = "http://www.w3.org/2000/svg";

// ---- DOM building ----------------------------------------------------------------------------

/** Builds an element. `props` keys: class, text, on<event> (a function), dataset, or attributes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  appendAll(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyProps(node, attrs);
  appendAll(node, children);
  return node;
}

function applyProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.setAttribute("class", value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "value") node.value = value;
    else if (key === "checked") node.checked = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendAll(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function clear(node) {
  node.replaceChildren();
  return node;
}

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("shown"), 3500);
}

// ---- formatting ------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");

/** The browser's local time with its offset from UTC, so a time read off the page is never
 * mistaken for UTC (or the other way round): `2026-12-04 10:15:02 UTC+01:00`. */
/** The zone the operator reads times in: "local" (the browser's) or "utc", kept per browser. */
let chosenZone = null;
function timeZoneChoice() {
  if (!chosenZone) {
    try {
      chosenZone = localStorage.getItem("cuba.times") === "utc" ? "utc" : "local";
    } catch {
      chosenZone = "local";
    }
  }
  return chosenZone;
}

function chooseTimeZone(zone) {
  chosenZone = zone === "utc" ? "utc" : "local";
  try {
    localStorage.setItem("cuba.times", chosenZone);
  } catch {
    // Storage refused (a private window): the choice lasts until the page is left.
  }
}

function formatTime(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  if (timeZoneChoice() === "utc") {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${utcOffset(d)}`;
}

function utcOffset(d) {
  const minutes = -d.getTimezoneOffset();
  if (minutes === 0) return "UTC";
  const sign = minutes > 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function clockTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `datetime-local` input value (local time) to epoch milliseconds, or undefined. */
function localInputToMillis(value) {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

function millisToLocalInput(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function errorText(body, status) {
  if (body && typeof body === "object" && body.error) {
    const e = body.error;
    const field = e.field ? ` (field: ${e.field})` : "";
    return `${e.code}: ${e.message}${field}`;
  }
  return `the server answered ${status}`;
}

// ---- session and API -------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** The claims of the signed-in token, for display only (the server checks the signature). */
function claims() {
  const raw = token();
  if (!raw) return null;
  try {
    const payload = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

class SignedOut extends Error {}

/** Calls the admin API; `options.signal` cancels the call (the answer is then status 0). */
async function api(method, path, body, options = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers, signal: options.signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (e) {
    return { status: 0, body: { error: { code: "network_error", message: String(e) } } };
  }
  let parsed = null;
  let text;
  try {
    text = await response.text();
  } catch (e) {
    // Cancelled (or cut off) while the body was arriving.
    return { status: 0, body: { error: { code: "network_error", message: String(e) } } };
  }
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { error: { code: "bad_response", message: text.slice(0, 200) } };
    }
  }
  if (response.status === 401) {
    signOut(errorText(parsed, 401));
    throw new SignedOut();
  }
  return { status: response.status, body: parsed };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** What a view keeps when the session ends under it (its unsaved work), set while it is shown. */
let keepDraft = () => {};
const DRAFT_KEY = "cuba-draft";
const RETURN_KEY = "cuba-return-to";

/** The work a view kept when the session ended on `hash`, if any. */
function keptDraft(hash) {
  try {
    const draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null");
    return draft && draft.hash === hash ? draft : null;
  } catch {
    return null;
  }
}

function signOut(reason) {
  // The token expired under someone's work: keep it, and come back to it after signing in.
  keepDraft();
  if (!location.hash.startsWith("#/signin")) sessionStorage.setItem(RETURN_KEY, location.hash);
  sessionStorage.removeItem(TOKEN_KEY);
  signOut.reason = reason || "";
  location.hash = "#/signin";
  route();
}

// ---- forms -----------------------------------------------------------------------------------

/** A labelled control with an error slot under it; `key` names it for problems. */
function labelled(label, control, slots, key, hint) {
  control.id = control.id || `rb-${key.replace(/[^a-z0-9_-]/gi, "-")}`;
  const slot = el("div", { class: "field-error", id: `error-${key.replace(/[^a-z0-9_-]/gi, "-")}`, dataset: { key } });
  slots[key] = { slot, control };
  return el("div", { class: "field" }, el("label", { for: control.id, text: label }), control,
    hint ? el("div", { class: "hint", text: hint }) : null, slot);
}

function options(select, pairs, value) {
  clear(select).append(...pairs.map(([v, label]) => el("option", { value: v, text: label })));
  select.value = value;
  return select;
}
