// Cuba admin UI: a small single-page app over the admin API. This file routes between the
// views, and holds sign-in, the dashboard and the rules list; dom.js builds the page and talks
// to the API, browsers.js holds the listings, rule-form.js and builder.js the rule editor.
//
// Everything it shows (event fields, rule texts, alert messages) may come from an attacker, so
// data only ever reaches the page through `textContent`, attribute setters and SVG attributes.
// Nothing here hands a string to the HTML parser, and there are no inline handlers; the
// server's CSP forbids inline script besides.
"use strict";

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
  keepDraft = () => {};
  const { parts, params } = parseHash();
  // Each navigation renders into a container of its own: a view still loading when the user
  // moves on goes on writing into its container, which is no longer on the page.
  const main = el("div", { class: "view" });
  clear(document.getElementById("main")).append(main);
  const signedIn = Boolean(token());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  document.getElementById("search").hidden = !signedIn;
  document.getElementById("times").hidden = !signedIn;
  warnOfExpiry();
  const who = claims();
  document.getElementById("who").textContent = signedIn && who ? `signed in as ${who.sub}` : "";
  if (!signedIn) {
    renderSignIn(main);
    return;
  }
  const view = parts[0] || "dashboard";
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.dataset.view === view;
    link.classList.toggle("active", current);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    switch (view) {
      case "signin":
      case "dashboard":
        await renderDashboard(main, params);
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
      case "silences":
        await renderSilences(main, params);
        break;
      case "schemas":
        if (parts[1] === "new") await renderSchemaEditor(main, null, params);
        else if (parts[1]) await renderSchemaEditor(main, parts[1], params);
        else await renderSchemas(main);
        break;
      case "errors":
        await renderErrors(main, params);
        break;
      case "users":
        await renderUser(main, parts[1] || "", params);
        break;
      default:
        main.append(el("p", { class: "empty", text: "No such page." }));
    }
  } catch (e) {
    if (!(e instanceof SignedOut)) {
      main.append(el("div", { class: "error-box", text: `Something went wrong: ${e}` }));
    }
  }
  announce(main);
}

let firstView = true;

/** The view's heading becomes the page title, and after a navigation focus moves to it, so a
 * screen reader says where it went (not on the page's first view, where the first Tab belongs
 * to the skip link; nor when the view put focus somewhere itself, or someone is typing in the
 * bar's search box). */
function announce(view) {
  if (!view.isConnected) return;
  const heading = view.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Cuba admin` : "Cuba admin";
  const first = firstView;
  firstView = false;
  const active = document.activeElement;
  // Someone typing outside the view (the search box) keeps their focus.
  const typing = active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement;
  if (!first && heading && !typing && (!active || active === document.body || !view.contains(active))) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

// ---- sign in ---------------------------------------------------------------------------------

function renderSignIn(main) {
  const error = el("div", { class: "error-box", id: "signin-error", text: signOut.reason || "" });
  const input = el("textarea", {
    id: "token", rows: 5, placeholder: "eyJhbGciOiJIUzI1NiIs…", autocomplete: "off", spellcheck: "false",
  });
  // A token is one line: Enter signs in rather than adding a newline.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      input.form?.requestSubmit();
    }
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
        // Back to where the last session ended (its unsaved work is offered there).
        location.hash = sessionStorage.getItem(RETURN_KEY) || "#/dashboard";
        sessionStorage.removeItem(RETURN_KEY);
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

/** The spans the dashboard offers, in minutes (the API's limit is the longest). */
const DASHBOARD_SPANS = [[15, "Last 15 minutes"], [60, "Last hour"], [180, "Last 3 hours"]];

async function renderDashboard(main, params) {
  const wanted = Number(params.get("minutes"));
  const [minutes, label] = DASHBOARD_SPANS.find(([m]) => m === wanted) || DASHBOARD_SPANS[1];
  const totals = el("div", { class: "totals" });
  const chartBox = el("div", { id: "activity-chart" });
  const tableBox = el("details", { id: "activity-table-box" });
  const receiptTotals = el("div", { class: "totals" });
  const receiptBox = el("div", { id: "receipts-chart" });
  const rulesBox = el("section", { class: "card", id: "alerts-by-rule", "aria-labelledby": "alerts-by-rule-title" });
  const typesBox = el("section", { class: "card", id: "events-by-type", "aria-labelledby": "events-by-type-title" });
  const note = el("p", { class: "hint" });
  const span = options(el("select", { id: "activity-span" }), DASHBOARD_SPANS.map(([m, l]) => [String(m), l]), String(minutes));
  span.addEventListener("change", () => { location.hash = `#/dashboard${query({ minutes: span.value })}`; });
  main.append(
    el("div", { class: "row" },
      el("h1", { text: label }),
      el("span", { class: "spacer" }),
      el("div", {}, el("label", { for: "activity-span", text: "Span" }), span)),
    el("div", { class: "card" },
      totals,
      el("div", { class: "legend" },
        el("span", {}, el("i", { class: "events" }), "events per minute"),
        el("span", {}, el("i", { class: "alerts" }), "alerts per minute")),
      chartBox,
      tableBox,
      note),
    el("div", { class: "two" }, rulesBox, typesBox),
    el("section", { class: "card", "aria-labelledby": "receipts-title" },
      el("h2", { id: "receipts-title", text: "SMS receipts" }),
      el("p", { class: "hint", text: "What the carriers said about the SMS Cube sent, by the minute their receipt came: delivered, or failed (the alert browser shows why)." }),
      receiptTotals,
      el("div", { class: "legend" },
        el("span", {}, el("i", { class: "delivered" }), "delivered per minute"),
        el("span", {}, el("i", { class: "failed" }), "failed per minute")),
      receiptBox),
  );
  const load = async () => {
    const { status, body } = await api("GET", `/activity?minutes=${minutes}`);
    if (status !== 200) {
      clear(chartBox).append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    const sum = (xs) => (xs || []).reduce((a, b) => a + b, 0);
    const yesterday = body.yesterday || { events: [], alerts: [] };
    const lastWeek = body.last_week || { events: [], alerts: [] };
    // Each total beside the same minutes a day and a week earlier: is it normal?
    const total = (id, value, what, series) => el("div", {},
      el("strong", { id, text: value }), what,
      series ? el("div", { class: "hint", id: `${id}-yesterday`, text: `${sum(yesterday[series])} yesterday` }) : null,
      series ? el("div", { class: "hint", id: `${id}-last-week`, text: `${sum(lastWeek[series])} a week ago` }) : null);
    clear(totals).append(
      total("events-total", sum(body.events), "events", "events"),
      total("invalid-total", sum(body.invalid), "invalid (error log)"),
      total("alerts-total", sum(body.alerts), "alerts", "alerts"),
    );
    clear(chartBox).append(activityChart(body, ["events", "alerts"], `Events and alerts per minute, ${label.toLowerCase()}`));
    clear(tableBox).append(el("summary", { text: "The minutes as a table" }), activityTable(body));
    clear(receiptTotals).append(
      el("div", {}, el("strong", { id: "delivered-total", text: sum(body.delivered) }), "delivered"),
      el("div", {}, el("strong", { id: "failed-total", text: sum(body.failed) }), "failed"),
    );
    clear(receiptBox).append(activityChart(body, ["delivered", "failed"], `SMS delivered and failed per minute, ${label.toLowerCase()}`));
    note.textContent = `Updated ${formatTime(Date.now())}; refreshes every 15 s.`;
  };
  await Promise.all([load(), renderAlertsByRule(rulesBox), renderEventTypes(typesBox)]);
  const failures = el("section", { class: "card", id: "stream-failures", "aria-labelledby": "stream-failures-title" });
  main.append(failures);
  await renderStreamFailures(failures);
  const timer = setInterval(() => load().catch(() => {}), 15000);
  leaveView = () => clearInterval(timer);
}

/** Every minute's counts, newest first: the chart's values without hovering. */
function activityTable(body) {
  const yesterday = body.yesterday || { events: [], alerts: [] };
  const lastWeek = body.last_week || { events: [], alerts: [] };
  const minute = body.bucket_seconds * 1000;
  const rows = (body.events || []).map((_, i) => i).reverse().map((i) => el("tr", {},
    el("td", { text: formatTime(body.from + i * minute) }),
    el("td", { text: body.events[i] }), el("td", { text: (body.invalid || [])[i] ?? 0 }),
    el("td", { text: body.alerts[i] }),
    el("td", { text: yesterday.events[i] ?? 0 }), el("td", { text: yesterday.alerts[i] ?? 0 }),
    el("td", { text: lastWeek.events[i] ?? 0 })));
  return el("table", { id: "activity-table" },
    el("caption", { class: "visually-hidden", text: "Events and alerts per minute, with the same minute a day and a week earlier" }),
    el("thead", {}, el("tr", {}, ["Minute", "Events", "Invalid", "Alerts", "Events yesterday", "Alerts yesterday", "Events a week ago"].map((t) => el("th", { text: t })))),
    el("tbody", {}, rows));
}

/** The day's events by type, from the newest events (at most the catalogue's sample). */
async function renderEventTypes(box) {
  const { status, body } = await api("GET", "/event-types?days=1");
  clear(box).append(el("h2", { id: "events-by-type-title", text: "Events by type, last 24 hours" }));
  if (status !== 200) {
    box.append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  const seen = body.types.filter((t) => t.seen > 0);
  box.append(el("p", { class: "hint", text: body.truncated
    ? `From the newest ${body.events_read} events (there were more).`
    : `All ${body.events_read} events.` }));
  if (!seen.length) {
    box.append(el("p", { class: "empty", text: "No events in the last 24 hours." }));
    return;
  }
  box.append(el("table", { id: "events-by-type-table" },
    el("thead", {}, el("tr", {}, ["Type", "Events", "Invalid"].map((t) => el("th", { text: t })))),
    el("tbody", {}, seen.map((t) => el("tr", { dataset: { type: t.label } },
      el("td", {}, el("a", { href: `#/errors${query({ type: t.label })}`, title: "its error-log entries", text: t.label })),
      el("td", { text: t.seen }),
      el("td", { class: t.invalid ? "bad" : "", text: t.invalid }))))));
}

/** Today's alerts by rule, most first, and the rules whose health warns (from the rule health). */
async function renderAlertsByRule(box) {
  const { status, body } = await api("GET", "/rule-health?days=1");
  clear(box).append(el("h2", { id: "alerts-by-rule-title", text: "Alerts by rule today (UTC)" }));
  if (status !== 200) {
    box.append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  const fired = body.rules.filter((r) => r.fired > 0).sort((a, b) => b.fired - a.fired);
  if (!fired.length) {
    box.append(el("p", { class: "empty", text: "No rule fired today." }));
    return;
  }
  const statuses = (r) => Object.entries(r.statuses).map(([k, n]) => `${k} ${n}`).join(", ");
  box.append(el("table", { id: "alerts-by-rule-table" },
    el("thead", {}, el("tr", {}, ["Rule", "Alerts", "Matched", "How they went"].map((t) => el("th", { text: t })))),
    el("tbody", {}, fired.map((r) => el("tr", { dataset: { rule: r.rule_id } },
      el("td", {}, el("a", { href: `#/alerts${query({ rule: r.rule_id })}`, class: "mono", text: r.rule_id })),
      el("td", { text: r.fired }), el("td", { text: r.matched }), el("td", { text: statuses(r) }))))));
}

/**
 * Stream records whose retries ran out (the rules function gave up on them after its retries):
 * how many wait on the failure queue, and a button that processes them again.
 */
async function renderStreamFailures(box, report) {
  const { status, body } = await api("GET", "/stream-failures");
  const title = el("h2", { id: "stream-failures-title", text: "Stream failures" });
  if (status === 404 && body?.error?.code === "no_failure_queue") {
    clear(box).append(title, el("p", { class: "hint", text: "This deployment has no stream failure queue." }));
    return;
  }
  if (status !== 200) {
    clear(box).append(title, el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  const waiting = body.waiting;
  const summary = el("p", { id: "stream-failures-waiting", dataset: { waiting } }, waiting === 0
    ? "No stream records are waiting: every record the rules function took was processed."
    : `${waiting} failure ${waiting === 1 ? "record" : "records"} waiting: stream records whose retries ran out. A redrive processes them again (nothing already sent is sent twice).`);
  const parts = [title, summary];
  if (waiting > 0) {
    const button = el("button", { type: "button", id: "redrive", text: "Redrive now" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Redriving…";
      const answer = await api("POST", "/stream-failures/redrive");
      if (answer.status !== 200) {
        toast(errorText(answer.body, answer.status));
        await renderStreamFailures(box);
        return;
      }
      await renderStreamFailures(box, answer.body);
    });
    parts.push(button);
  }
  if (report) parts.push(el("p", { id: "redrive-report", role: "status", text: describeRedrive(report) }));
  clear(box).append(...parts);
}

function describeRedrive(r) {
  const left = [
    r.still_failing && `${r.still_failing} failing again`,
    r.expired && `${r.expired} no longer in the stream (over 24 h old; the events are in the table)`,
    r.unreadable && `${r.unreadable} not failure records`,
    r.left_for_later && `${r.left_for_later} left for the next redrive`,
  ].filter(Boolean);
  return `Redriven: ${r.redriven} of ${r.messages} (${r.records} stream ${r.records === 1 ? "record" : "records"} processed again)` +
    (left.length ? `; ${left.join(", ")}.` : ".");
}

/**
 * Two per-minute series of the activity answer as bars, the second narrower in front, one pair
 * per minute: events and alerts, or SMS delivered and failed.
 */
function activityChart(body, [backKey, frontKey] = ["events", "alerts"], title = "Events and alerts per minute over the last hour") {
  const { from, bucket_seconds: bucket } = body;
  const events = body[backKey] || [], alerts = body[frontKey] || [];
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
    "aria-label": title,
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
    const label = `${clockTime(start)}: ${events[i]} ${backKey}, ${alerts[i]} ${frontKey}`;
    const group = svg("g", { dataset: { minute: start, [backKey]: events[i], [frontKey]: alerts[i] } },
      svg("title", { text: label }));
    if (events[i] > 0) {
      group.append(svg("rect", {
        class: `bar-${backKey}`, x: x + 1, width: Math.max(1, slot - 2),
        y: y(events[i]), height: top + plotH - y(events[i]),
      }));
    }
    if (alerts[i] > 0) {
      group.append(svg("rect", {
        class: `bar-${frontKey}`, x: x + slot * 0.25, width: Math.max(1, slot * 0.5),
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
      const distinct = c.distinct ? `, ≥ ${c.distinct.at_least} different ${c.distinct.field}` : "";
      const across = c.group_by === "all" ? ", across all users"
        : c.group_by && c.group_by !== "user" ? `, per ${c.group_by} across users` : "";
      // A drop in volume: at most so many, rather than at least.
      const count = c.count_at_most !== undefined && c.count_at_least === undefined
        ? `≤ ${c.count_at_most}` : `≥ ${c.count_at_least ?? 1}`;
      return `${count} in ${c.seconds} s${sum}${distinct}${across}`;
    }
    case "absence": {
      const from = c.group_by === "all" ? " from anyone"
        : c.group_by && c.group_by !== "user" ? ` with the same ${c.group_by}, from anyone` : "";
      return `no ${JSON.stringify(c.expect || {})}${from} within ${c.seconds} s`;
    }
    case "heartbeat": return `no matching event from anyone for ${c.seconds} s`;
    default: return String(c.type);
  }
}

function describeAction(a) {
  if (!a || typeof a !== "object") return "";
  if (a.type !== "notify_operator") return "SMS the user";
  const grouped = a.group_wait_seconds !== undefined || a.group_interval_seconds !== undefined
    ? `, grouped per ${a.group_interval_seconds ?? 300} s` : "";
  return `notify operator (${a.severity || "warning"}${grouped})`;
}

async function renderRules(main) {
  const [{ status, body }, health] = await Promise.all([api("GET", "/rules"), api("GET", "/rule-health")]);
  const healthOf = new Map(health.status === 200 ? health.body.rules.map((h) => [h.rule_id, h]) : []);
  main.append(el("div", { class: "row" },
    el("h1", { text: "Rules" }),
    el("span", { class: "spacer" }),
    el("button", { type: "button", id: "new-rule", onclick: () => { location.hash = "#/rules/new"; } , text: "New rule" })));
  if (status !== 200) {
    main.append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  const rows = body.rules.map((record) => ruleRow(record, healthOf.get(record.id)));
  main.append(el("table", { id: "rules-table" },
    el("thead", {}, el("tr", {}, ["On", "Rule", "When it fires", "Action", "Health (7 days)", "Version", "Last editor", "Updated"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No rules yet." })))));
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

function ruleRow(record, health) {
  const rule = record.rule || {};
  const version = el("td", { class: "mono", text: record.version });
  const editor = el("td", { text: record.updated_by });
  const updated = el("td", { text: formatTime(record.updated_at) });
  const toggle = enableSwitch("rules", "rule", record, { version, editor, updated });
  return el("tr", { dataset: { rule: record.id } },
    el("td", {}, toggle),
    el("td", {},
      el("a", { href: `#/rules/${encodeURIComponent(record.id)}`, class: "mono", text: record.id }),
      " ",
      el("a", { href: `#/alerts?rule=${encodeURIComponent(record.id)}`, class: "rule-alerts", text: "its alerts" }),
      el("div", { class: "hint", text: rule.description || "" })),
    el("td", { text: describeCondition(rule.condition) }),
    el("td", { text: describeAction(rule.action) }),
    el("td", { class: "rule-health" }, health ? [el("div", { class: "hint", text: healthLine(health) }), ...healthWarnings(health)] : "—"),
    version, editor, updated);
}


// ---- token expiry ----------------------------------------------------------------------------

/** How long before the admin token expires the bar warns: time to finish and save. */
const EXPIRY_WARNING_MS = 10 * 60 * 1000;

/** Warns, above the page, once the token has less than ten minutes left (the API signs the
 * operator out at expiry, and work not yet saved in a form would be lost). */
function warnOfExpiry() {
  const box = document.getElementById("token-expiry");
  const exp = claims()?.exp;
  const left = typeof exp === "number" ? exp * 1000 - Date.now() : Infinity;
  if (!token() || left > EXPIRY_WARNING_MS) {
    box.hidden = true;
    return;
  }
  const minutes = Math.max(0, Math.ceil(left / 60000));
  box.textContent = `Your admin token expires at ${formatTime(exp * 1000)} (in ${minutes} min): save what you are editing, then sign in again with a fresh token.`;
  box.hidden = false;
}

// ---- search ----------------------------------------------------------------------------------

/**
 * Where an id an operator pasted leads: a user id to the user's page, `<user>/<event id>` to the
 * user's timeline with that event marked (event ids are unique per user only), an alert id
 * (`<rule>#<user>#...`) to that rule's alerts for that user, a rule id to its editor.
 */
async function find(text) {
  const wanted = text.trim();
  if (!wanted) return;
  if (/^\d+$/.test(wanted)) {
    location.hash = `#/users/${wanted}`;
    return;
  }
  const event = /^(\d+)\/(\S+)$/.exec(wanted);
  if (event) {
    location.hash = `#/users/${event[1]}${query({ event: event[2] })}`;
    return;
  }
  const alert = /^([^#]+)#(\d+)#.+$/.exec(wanted);
  if (alert) {
    location.hash = `#/alerts${query({ rule: alert[1], user: alert[2] })}`;
    return;
  }
  const { status } = await api("GET", `/rules/${encodeURIComponent(wanted)}`);
  if (status === 200) {
    location.hash = `#/rules/${encodeURIComponent(wanted)}`;
    return;
  }
  toast(`No user, alert or rule is called ${wanted}. (An event is found as <user>/<event id>.)`);
}

// ---- start -----------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
// A request refused for an expired token signs out (keeping unsaved work) and then throws to
// stop what asked; in a button's handler nothing else is left to stop, so it ends there.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof SignedOut) event.preventDefault();
});
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => signOut(""));
  // Times in the browser's zone or in UTC: the view is drawn again in the one chosen.
  const times = document.getElementById("times");
  times.value = timeZoneChoice();
  times.addEventListener("change", () => {
    chooseTimeZone(times.value);
    route();
  });
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = document.getElementById("search-input");
    find(input.value).then(() => { input.value = ""; });
  });
  // The hash is the router's: the skip link moves focus instead of following its href.
  document.getElementById("skip").addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById("main").focus();
  });
  route();
  setInterval(warnOfExpiry, 30000);
});
