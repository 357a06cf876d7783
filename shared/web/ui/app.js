// Cuba admin UI: a small single-page app over the admin API.
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

function formatTime(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
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

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  signOut.reason = reason || "";
  location.hash = "#/signin";
  route();
}

// ---- router ----------------------------------------------------------------------------------

let leaveView = () => {};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search || "") };
}

async function route() {
  leaveView();
  leaveView = () => {};
  const { parts, params } = parseHash();
  const main = clear(document.getElementById("main"));
  const signedIn = Boolean(token());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  const who = claims();
  document.getElementById("who").textContent = signedIn && who ? `signed in as ${who.sub}` : "";
  if (!signedIn) {
    renderSignIn(main);
    return;
  }
  const view = parts[0] || "dashboard";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
  }
  try {
    switch (view) {
      case "signin":
      case "dashboard":
        await renderDashboard(main);
        break;
      case "rules":
        if (parts[1] === "new") await renderEditor(main, null);
        else if (parts[1]) await renderEditor(main, parts[1]);
        else await renderRules(main);
        break;
      case "events":
        await renderEvents(main, params, "events");
        break;
      case "feedback":
        await renderEvents(main, params, "feedback");
        break;
      case "alerts":
        await renderAlerts(main, params);
        break;
      case "schemas":
        if (parts[1] === "new") await renderSchemaEditor(main, null);
        else if (parts[1]) await renderSchemaEditor(main, parts[1]);
        else await renderSchemas(main);
        break;
      case "errors":
        await renderErrors(main, params);
        break;
      default:
        main.append(el("p", { class: "empty", text: "No such page." }));
    }
  } catch (e) {
    if (!(e instanceof SignedOut)) {
      main.append(el("div", { class: "error-box", text: `Something went wrong: ${e}` }));
    }
  }
}

// ---- sign in ---------------------------------------------------------------------------------

function renderSignIn(main) {
  const error = el("div", { class: "error-box", id: "signin-error", text: signOut.reason || "" });
  const input = el("textarea", {
    id: "token", rows: 5, placeholder: "eyJhbGciOiJIUzI1NiIs…", autocomplete: "off", spellcheck: "false",
  });
  const form = el("form", {
    class: "card signin",
    onsubmit: async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        error.textContent = "Paste an admin token.";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      const response = await fetch(`${API}/rules`, { headers: { Authorization: `Bearer ${value}` } })
        .catch((e) => ({ status: 0, json: async () => ({ error: { code: "network_error", message: String(e) } }) }));
      if (response.status === 200) {
        signOut.reason = "";
        location.hash = "#/dashboard";
        route();
        return;
      }
      sessionStorage.removeItem(TOKEN_KEY);
      const body = await response.json().catch(() => null);
      error.textContent = `Sign-in refused: ${errorText(body, response.status)}`;
    },
  },
  el("h1", { text: "Sign in" }),
  el("p", { class: "hint", text: "Paste an admin token (a JWT with role \"admin\"). `make dev` prints one; in AWS, mint one with the admin token secret. The token stays in this tab only." }),
  el("label", { for: "token", text: "Admin token" }),
  input,
  error,
  el("button", { type: "submit", id: "sign-in", text: "Sign in" }));
  main.append(form);
  input.focus();
}

// ---- dashboard -------------------------------------------------------------------------------

async function renderDashboard(main) {
  const totals = el("div", { class: "totals" });
  const chartBox = el("div", { id: "activity-chart" });
  const note = el("p", { class: "hint" });
  main.append(
    el("h1", { text: "Last hour" }),
    el("div", { class: "card" },
      totals,
      el("div", { class: "legend" },
        el("span", {}, el("i", { class: "events" }), "events per minute"),
        el("span", {}, el("i", { class: "alerts" }), "alerts per minute")),
      chartBox,
      note),
  );
  const load = async () => {
    const { status, body } = await api("GET", "/activity?minutes=60");
    if (status !== 200) {
      clear(chartBox).append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    clear(totals).append(
      el("div", {}, el("strong", { id: "events-total", text: sum(body.events) }), "events"),
      el("div", {}, el("strong", { id: "alerts-total", text: sum(body.alerts) }), "alerts"),
    );
    clear(chartBox).append(activityChart(body));
    note.textContent = `Updated ${formatTime(Date.now())}; refreshes every 15 s.`;
  };
  await load();
  const timer = setInterval(() => load().catch(() => {}), 15000);
  leaveView = () => clearInterval(timer);
}

/** Events as bars and alerts as narrower bars in front, one pair per minute. */
function activityChart({ from, bucket_seconds: bucket, events, alerts }) {
  const width = 960, height = 240, left = 40, right = 10, top = 10, bottom = 26;
  const n = events.length;
  const max = Math.max(1, ...events, ...alerts);
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const plotW = width - left - right, plotH = height - top - bottom;
  const slot = plotW / n;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Events and alerts per minute over the last hour",
  });
  for (let v = 0; v <= yMax; v += step) {
    chart.append(
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", text: v }),
    );
  }
  for (let i = 0; i < n; i++) {
    const start = from + i * bucket * 1000;
    const x = left + i * slot;
    const label = `${clockTime(start)}: ${events[i]} events, ${alerts[i]} alerts`;
    const group = svg("g", { dataset: { minute: start, events: events[i], alerts: alerts[i] } },
      svg("title", { text: label }));
    if (events[i] > 0) {
      group.append(svg("rect", {
        class: "bar-events", x: x + 1, width: Math.max(1, slot - 2),
        y: y(events[i]), height: top + plotH - y(events[i]),
      }));
    }
    if (alerts[i] > 0) {
      group.append(svg("rect", {
        class: "bar-alerts", x: x + slot * 0.25, width: Math.max(1, slot * 0.5),
        y: y(alerts[i]), height: top + plotH - y(alerts[i]),
      }));
    }
    // An invisible full-height target so every minute has a tooltip, even an empty one.
    group.append(svg("rect", { x, width: slot, y: top, height: plotH, fill: "transparent" }));
    chart.append(group);
    if (i % 10 === 0 || i === n - 1) {
      chart.append(svg("text", { x: x + slot / 2, y: height - 8, "text-anchor": "middle", text: clockTime(start) }));
    }
  }
  return chart;
}

function niceStep(max) {
  const raw = max / 4;
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) {
    if (raw <= m * magnitude) return Math.max(1, m * magnitude);
  }
  return Math.max(1, 10 * magnitude);
}

// ---- rules list ------------------------------------------------------------------------------

function describeCondition(c) {
  if (!c || typeof c !== "object") return "";
  switch (c.type) {
    case "first": return "first matching event";
    case "window": {
      const sum = c.sum ? `, ${c.sum.field} ≥ ${c.sum.at_least}` : "";
      return `≥ ${c.count_at_least ?? 1} in ${c.seconds} s${sum}`;
    }
    case "absence": return `no ${JSON.stringify(c.expect || {})} within ${c.seconds} s`;
    default: return String(c.type);
  }
}

function describeAction(a) {
  if (!a || typeof a !== "object") return "";
  return a.type === "notify_operator" ? `notify operator (${a.severity || "warning"})` : "SMS the user";
}

async function renderRules(main) {
  const { status, body } = await api("GET", "/rules");
  main.append(el("div", { class: "row" },
    el("h1", { text: "Rules" }),
    el("span", { class: "spacer" }),
    el("button", { type: "button", id: "new-rule", onclick: () => { location.hash = "#/rules/new"; } , text: "New rule" })));
  if (status !== 200) {
    main.append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  const rows = body.rules.map((record) => ruleRow(record));
  main.append(el("table", { id: "rules-table" },
    el("thead", {}, el("tr", {}, ["On", "Rule", "When it fires", "Action", "Version", "Last editor", "Updated"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No rules yet." })))));
}

/**
 * The on/off switch of a rule or schema (`registry` is the API path, `noun` its data attribute):
 * saves a new version at once and updates the row's version, editor and time cells; a conflicting
 * change by someone else reloads the list.
 */
function enableSwitch(registry, noun, record, cells) {
  const toggle = el("input", {
    type: "checkbox", class: "switch", role: "switch", checked: record.enabled,
    "aria-label": `enabled: ${record.id}`, dataset: { [noun]: record.id },
  });
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    const { status, body } = await api("PUT", `/${registry}/${encodeURIComponent(record.id)}/enabled`,
      { enabled: toggle.checked, version: record.version });
    toggle.disabled = false;
    if (status === 200) {
      record = body;
      cells.version.textContent = body.version;
      cells.editor.textContent = body.updated_by;
      cells.updated.textContent = formatTime(body.updated_at);
      toast(`${body.id} ${body.enabled ? "enabled" : "disabled"} (version ${body.version})`);
    } else {
      toggle.checked = !toggle.checked;
      toast(status === 409 ? `Someone changed this ${noun} meanwhile; reloading.` : errorText(body, status));
      if (status === 409) route();
    }
  });
  return toggle;
}

function ruleRow(record) {
  const rule = record.rule || {};
  const version = el("td", { class: "mono", text: record.version });
  const editor = el("td", { text: record.updated_by });
  const updated = el("td", { text: formatTime(record.updated_at) });
  const toggle = enableSwitch("rules", "rule", record, { version, editor, updated });
  return el("tr", { dataset: { rule: record.id } },
    el("td", {}, toggle),
    el("td", {},
      el("a", { href: `#/rules/${encodeURIComponent(record.id)}`, class: "mono", text: record.id }),
      el("div", { class: "hint", text: rule.description || "" })),
    el("td", { text: describeCondition(rule.condition) }),
    el("td", { text: describeAction(rule.action) }),
    version, editor, updated);
}

// The rule editor (renderEditor) is in builder.js.

// ---- browsers --------------------------------------------------------------------------------

function filterForm(fields, params, onApply) {
  const controls = {};
  const form = el("form", { class: "card row", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const values = {};
    for (const [name, control] of Object.entries(controls)) {
      const raw = control.value.trim();
      if (!raw) continue;
      values[name] = control.type === "datetime-local" ? String(localInputToMillis(raw) ?? "") : raw;
    }
    onApply(values);
  } });
  for (const f of fields) {
    let control;
    const current = params.get(f.name) || "";
    if (f.options) {
      control = el("select", {}, f.options.map(([value, label]) => el("option", { value, text: label })));
      control.value = current;
    } else if (f.type === "datetime-local") {
      control = el("input", { type: "datetime-local", value: millisToLocalInput(current) });
    } else {
      control = el("input", { type: f.type || "text", value: current, placeholder: f.placeholder || "" });
    }
    control.id = `filter-${f.name}`;
    controls[f.name] = control;
    form.append(el("div", {}, el("label", { for: control.id, text: f.label }), control));
  }
  form.append(el("button", { type: "submit", id: "apply-filters", text: "Apply" }),
    el("button", { type: "button", class: "secondary", onclick: () => onApply({}), text: "Clear" }));
  return form;
}

/** A newest-first table that loads pages with the API's cursor. */
async function pagedTable(main, path, params, headings, row, tableId) {
  const body = el("tbody");
  const error = el("div", { class: "error-box" });
  const more = el("button", { type: "button", class: "secondary", id: "load-more", text: "Load more", hidden: true });
  const table = el("table", { id: tableId }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", { text: h })))), body);
  main.append(table, error, el("div", { class: "row" }, more));
  let cursor = null;
  const load = async () => {
    more.disabled = true;
    const { status, body: page } = await api("GET", path + query({ ...params, cursor }));
    more.disabled = false;
    if (status !== 200) {
      error.textContent = errorText(page, status);
      return;
    }
    for (const item of page.items) body.append(row(item));
    if (!body.children.length) {
      body.append(el("tr", {}, el("td", { colspan: headings.length, class: "empty", text: "Nothing in this range." })));
    }
    cursor = page.next;
    more.hidden = !cursor;
    table.dataset.loaded = "true";
  };
  more.addEventListener("click", load);
  await load();
}

function setHashParams(view, values) {
  location.hash = `#/${view}${query(values)}`;
}

function details(value) {
  return el("details", {}, el("summary", { text: "JSON" }), el("pre", { text: pretty(value) }));
}

function userLink(view, user) {
  return el("a", { href: `#/${view}?user=${encodeURIComponent(user)}`, text: user });
}

async function renderEvents(main, params, view) {
  const feedbackOnly = view === "feedback";
  const fields = [
    { name: "user", label: "User", type: "number", placeholder: "all users" },
    ...(feedbackOnly ? [] : [{ name: "session", label: "Web session", placeholder: "uuid" }]),
    ...(feedbackOnly ? [] : [{ name: "kind", label: "Kind", options: [["", "all"], ["activity", "activity"], ["web", "web"], ["feedback", "feedback"]] }]),
    { name: "from", label: "From", type: "datetime-local" },
    { name: "to", label: "To", type: "datetime-local" },
  ];
  main.append(el("h1", { text: feedbackOnly ? "Feedback" : "Events" }),
    filterForm(fields, params, (values) => setHashParams(view, values)));
  const filters = Object.fromEntries(params.entries());
  const headings = feedbackOnly
    ? ["Received", "User", "Id", "Rating", "Comment", ""]
    : ["Received", "User", "Id", "Kind", "What", ""];
  await pagedTable(main, feedbackOnly ? "/feedback" : "/events", filters, headings, (e) => {
    const what = e.kind === "feedback"
      ? `rating ${e.rating}${e.comment ? `: ${e.comment}` : ""}`
      : e.kind === "web"
        ? `${e.category ?? "(no category)"}/${e.name} in session ${e.session_id}`
        : `${e.noun} ${e.verb}`;
    return el("tr", { dataset: { event: e.id } },
      el("td", { text: formatTime(e.received_at) }),
      el("td", {}, userLink(view, e.user)),
      el("td", { class: "mono", text: e.id }),
      ...(feedbackOnly
        ? [el("td", { text: e.rating }), el("td", { class: "text", text: e.comment || "" })]
        : [el("td", { text: e.kind }), el("td", { class: "text", text: what })]),
      el("td", {}, details(e)));
  }, "events-table");
}

async function renderAlerts(main, params) {
  main.append(el("h1", { text: "Alerts" }),
    filterForm([
      { name: "user", label: "User", type: "number", placeholder: "all users" },
      { name: "rule", label: "Rule", placeholder: "all rules" },
      { name: "from", label: "From", type: "datetime-local" },
      { name: "to", label: "To", type: "datetime-local" },
    ], params, (values) => setHashParams("alerts", values)));
  const filters = Object.fromEntries(params.entries());
  await pagedTable(main, "/alerts", filters,
    ["Fired", "Rule", "User", "Action", "Status", "Message", ""],
    (a) => el("tr", { dataset: { alert: a.alert_id, rule: a.rule_id } },
      el("td", { text: formatTime(a.fired_at) }),
      el("td", {}, el("a", { href: `#/rules/${encodeURIComponent(a.rule_id)}`, class: "mono", text: a.rule_id })),
      el("td", {}, userLink("alerts", a.user)),
      el("td", { text: a.action === "notify_operator" ? `operator (${a.severity || ""})` : "SMS" }),
      el("td", {}, el("span", { class: `status ${a.status}`, text: a.status }),
        a.reason ? el("div", { class: "hint", text: a.reason }) : null),
      el("td", { class: "text alert-text", text: a.text }),
      el("td", {}, details(a))),
    "alerts-table");
}

// ---- schemas --------------------------------------------------------------------------------

function describeMatch(m) {
  if (!m || typeof m !== "object") return "";
  switch (m.kind) {
    case "activity": return `activity ${m.noun}/${m.verb}`;
    case "web": return `web ${m.category}/${m.name}`;
    default: return String(m.kind);
  }
}

async function renderSchemas(main) {
  const { status, body } = await api("GET", "/schemas");
  main.append(el("div", { class: "row" },
    el("h1", { text: "Event schemas" }),
    el("span", { class: "spacer" }),
    el("button", { type: "button", id: "new-schema", onclick: () => { location.hash = "#/schemas/new"; }, text: "New schema" })));
  if (status !== 200) {
    main.append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  main.append(el("p", { class: "hint", text: "Each stored event's payload is checked against the most specific schema for its type (exact names before * patterns) before any rule sees it. Invalid events go to the error log." }));
  const rows = body.schemas.map((record) => {
    const doc = record.schema || {};
    const version = el("td", { class: "mono", text: record.version });
    const editor = el("td", { text: record.updated_by });
    const updated = el("td", { text: formatTime(record.updated_at) });
    const toggle = enableSwitch("schemas", "schema", record, { version, editor, updated });
    return el("tr", { dataset: { schema: record.id } },
      el("td", {}, toggle),
      el("td", {},
        el("a", { href: `#/schemas/${encodeURIComponent(record.id)}`, class: "mono", text: record.id }),
        el("div", { class: "hint", text: doc.description || "" })),
      el("td", { text: describeMatch(doc.match) }),
      el("td", { text: doc.accept_without_schema ? "accepted without a schema" : "JSON Schema" }),
      version, editor, updated);
  });
  main.append(el("table", { id: "schemas-table" },
    el("thead", {}, el("tr", {}, ["On", "Schema", "Event type", "Check", "Version", "Last editor", "Updated"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows)));
}

const NEW_SCHEMA = {
  id: "",
  description: "",
  match: { kind: "web", category: "page interaction", name: "scroll" },
  schema: { type: "object", required: ["host", "path"], properties: { host: { type: "string" }, path: { type: "string" } }, additionalProperties: false },
};

async function renderSchemaEditor(main, id) {
  let record = null;
  if (id) {
    const { status, body } = await api("GET", `/schemas/${encodeURIComponent(id)}`);
    if (status !== 200) {
      main.append(el("h1", { text: `Schema ${id}` }), el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    record = body;
  }
  const doc = record ? record.schema : NEW_SCHEMA;
  const text = el("textarea", { id: "schema-document", rows: 22, spellcheck: "false", value: pretty(doc) });
  const problems = el("div", { class: "field-error", id: "schema-problems" });
  const save = async () => {
    problems.textContent = "";
    text.classList.remove("invalid");
    let parsed;
    try {
      parsed = JSON.parse(text.value);
    } catch (e) {
      problems.textContent = `not valid JSON: ${e.message}`;
      text.classList.add("invalid");
      return;
    }
    const target = record ? record.id : String(parsed.id || "");
    if (!target) {
      problems.textContent = "$.id: give the schema an id";
      text.classList.add("invalid");
      return;
    }
    const { status, body } = await api("PUT", `/schemas/${encodeURIComponent(target)}`,
      { ...parsed, version: record ? record.version : 0 });
    if (status === 200 || status === 201) {
      toast(`Saved ${body.id} (version ${body.version}). Replay the error log to re-check logged events.`);
      location.hash = "#/schemas";
      return;
    }
    text.classList.add("invalid");
    const error = body && body.error;
    problems.textContent = error && Array.isArray(error.problems)
      ? error.problems.map((p) => `${p.path}: ${p.message}`).join("\n")
      : errorText(body, status);
  };
  const testEvent = el("textarea", { id: "schema-test-event", rows: 8, spellcheck: "false", value: pretty({
    session_id: "d66ac88b-f801-4984-953f-5c6b266494a0", category: "page interaction", name: "scroll",
    data: { host: "www.cwtech.dev", path: "/" }, timestamp: new Date().toISOString(),
  }) });
  const testResult = el("div", { class: "result", id: "schema-test-result" });
  const test = async () => {
    clear(testResult);
    let schema, event;
    try {
      schema = JSON.parse(text.value);
      event = JSON.parse(testEvent.value);
    } catch (e) {
      testResult.append(el("div", { class: "error-box", text: `not valid JSON: ${e.message}` }));
      return;
    }
    const { status, body } = await api("POST", "/schemas/test", { schema, event });
    if (status !== 200) {
      testResult.append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    testResult.append(el("p", {}, el("span", { class: `status ${body.valid ? "sent" : "undeliverable"}`, text: body.valid ? "valid" : "invalid" })),
      body.violations.length ? el("ul", {}, body.violations.map((v) => el("li", { text: `${v.path} (${v.kind}): ${v.message}` }))) : null);
  };
  appendAll(main, [
    el("h1", { text: record ? `Schema ${record.id}` : "New schema" }),
    record ? el("p", { class: "hint", text: `Version ${record.version}, last changed by ${record.updated_by} at ${formatTime(record.updated_at)}.` }) : null,
    el("div", { class: "two" },
      el("div", { class: "card" },
        el("label", { for: "schema-document", text: "Schema document" }),
        el("p", { class: "hint", text: "{\"id\", \"description\", \"match\": {\"kind\": \"activity\", \"noun\", \"verb\"} | {\"kind\": \"web\", \"category\", \"name\"} | {\"kind\": \"feedback\"}, and \"schema\" (a JSON Schema for the payload: properties, data, or the feedback) or \"accept_without_schema\": true. Names may use * as a wildcard." }),
        text, problems,
        el("div", { class: "row" },
          el("button", { type: "button", id: "save-schema", onclick: save, text: record ? `Save version ${record.version + 1}` : "Create schema" }),
          el("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/schemas"; }, text: "Back to schemas" }))),
      el("div", { class: "card" },
        el("h2", { text: "Test an event" }),
        el("p", { class: "hint", text: "Checks an event (either envelope) against the document on the left, saved or not. Nothing is stored." }),
        testEvent,
        el("div", { class: "row" }, el("button", { type: "button", id: "test-schema", onclick: test, text: "Test" })),
        testResult)),
  ]);
}

// ---- error log -------------------------------------------------------------------------------

async function renderErrors(main, params) {
  main.append(el("h1", { text: "Error log" }),
    el("p", { class: "hint", text: "Events whose payload broke their schema: kept exactly as received, never seen by a rule. Fix the schema, then replay: each entry is validated again and, if valid, processed as a normal event at its original receive time (once, however often you replay)." }),
    filterForm([
      { name: "type", label: "Event type", placeholder: "web page interaction/pageview" },
      { name: "violation", label: "Violation", placeholder: "unknown_field" },
      { name: "status", label: "Status", options: [["", "all"], ["open", "open"], ["replayed", "replayed"], ["replaying", "replaying"]] },
      { name: "from", label: "From", type: "datetime-local" },
      { name: "to", label: "To", type: "datetime-local" },
    ], params, (values) => setHashParams("errors", values)));
  const filters = Object.fromEntries(params.entries());
  const replayAll = el("button", { type: "button", class: "secondary", id: "replay-all", text: "Replay all open entries matching the filter" });
  replayAll.addEventListener("click", async () => {
    replayAll.disabled = true;
    const request = {};
    for (const key of ["type", "violation", "from", "to"]) if (filters[key]) request[key] = filters[key];
    const { status, body } = await api("POST", "/errors/replay", request);
    replayAll.disabled = false;
    if (status !== 200) {
      toast(errorText(body, status));
      return;
    }
    toast(`${body.replayed} replayed, ${body.still_invalid} still invalid${body.next ? "; more remain, replay again" : ""}.`);
    route();
  });
  main.append(el("div", { class: "row" }, replayAll));
  await pagedTable(main, "/errors", filters,
    ["Received", "User", "Event type", "Violations", "Status", "", ""],
    (entry) => {
      const statusCell = el("td", {}, el("span", { class: `status ${entry.status === "replayed" ? "sent" : "pending"}`, text: entry.status }));
      const replay = el("button", { type: "button", class: "secondary", text: "Replay", dataset: { replay: entry.id } });
      replay.hidden = entry.status === "replayed";
      const violationsCell = el("td", { class: "text" },
        el("ul", {}, entry.violations.map((v) => el("li", { text: `${v.path}: ${v.message}` }))));
      replay.addEventListener("click", async () => {
        replay.disabled = true;
        const { status, body } = await api("POST", `/errors/${encodeURIComponent(entry.user)}/${encodeURIComponent(entry.id)}/replay`);
        replay.disabled = false;
        if (status !== 200) {
          toast(errorText(body, status));
          return;
        }
        if (body.outcome === "still_invalid") {
          clear(violationsCell).append(el("ul", {}, body.violations.map((v) => el("li", { text: `${v.path}: ${v.message}` }))));
          toast("Still invalid against the current schema.");
        } else {
          clear(statusCell).append(el("span", { class: "status sent", text: body.outcome === "replayed" ? "replayed" : body.outcome.replace(/_/g, " ") }));
          replay.hidden = true;
          toast(body.outcome === "replayed" ? `Replayed; ${body.alerts_fired} alert(s) fired.` : body.outcome.replace(/_/g, " "));
        }
      });
      let raw;
      try {
        raw = pretty(JSON.parse(entry.raw));
      } catch {
        raw = entry.raw;
      }
      return el("tr", { dataset: { error: entry.id } },
        el("td", { text: formatTime(entry.received_at) }),
        el("td", { text: entry.user }),
        el("td", { class: "mono", text: entry.event_type }),
        violationsCell,
        statusCell,
        el("td", {}, replay),
        el("td", {}, el("details", {}, el("summary", { text: "raw" }), el("pre", { text: raw }))));
    }, "errors-table");
}

// ---- start -----------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => signOut(""));
  route();
});
