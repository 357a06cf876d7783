// Cuba admin UI: the browsers of events, alerts, schemas and the error log, each a filter form
// over a paged table. Uses el/api/... from dom.js; like every view, it writes data to the
// page only through textContent and attributes.
"use strict";

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
  if (controls.from) {
    // The other filters stay; the range becomes the span up to now.
    for (const [id, label, seconds] of TIME_PRESETS) {
      form.append(el("button", { type: "button", class: "secondary", id, text: label, onclick: () => {
        const values = {};
        for (const [name, control] of Object.entries(controls)) {
          const raw = control.value.trim();
          if (raw && name !== "from" && name !== "to") values[name] = raw;
        }
        values.from = String(Date.now() - seconds * 1000);
        onApply(values);
      } }));
    }
  }
  return form;
}

/** A newest-first table that loads pages with the API's cursor (its button `moreId`, for pages
 * that hold more than one table). */
async function pagedTable(main, path, params, headings, row, tableId, moreId = "load-more") {
  const body = el("tbody");
  const error = el("div", { class: "error-box" });
  const more = el("button", { type: "button", class: "secondary", id: moreId, text: "Load more", hidden: true });
  // `data-query`: which filters the table shows, so a test (or a reader of the DOM) can tell it
  // from the table it replaced.
  const table = el("table", { id: tableId, dataset: { query: query(params) } }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", { text: h })))), body);
  main.append(table, error, el("div", { class: "row" }, more));
  let cursor = null;
  const load = async () => {
    more.disabled = true;
    clear(error);
    const { status, body: page } = await api("GET", path + query({ ...params, cursor }));
    more.disabled = false;
    if (status !== 200) {
      // A listing that timed out (503) often answers the second time: the same page again,
      // from where it stopped.
      error.append(errorText(page, status), " ",
        el("button", { type: "button", class: "secondary retry", text: "Try again", onclick: load }));
      table.dataset.state = "error";
      return;
    }
    delete table.dataset.state;
    for (const item of page.items) body.append(row(item));
    if (!body.children.length) {
      // A filter the index cannot apply (an alert's status) may read a page with no match.
      const text = page.next ? "None found in what was read so far: Load more looks further." : "Nothing in this range.";
      body.append(el("tr", {}, el("td", { colspan: headings.length, class: "empty", text })));
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

/** A row's full JSON, folded; `what` names the row for screen readers (50 rows of "JSON"
 * would not say which is which). */
function details(value, what) {
  const label = what || value.id || value.alert_id || "";
  return el("details", {}, el("summary", { text: "JSON", "aria-label": label ? `JSON of ${label}` : "JSON" }),
    el("pre", { text: pretty(value) }));
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
    : EVENT_HEADINGS;
  await pagedTable(main, feedbackOnly ? "/feedback" : "/events", filters, headings,
    (e) => eventRow(e, view), "events-table");
}

const EVENT_HEADINGS = ["Received", "User", "Id", "Kind", "What", ""];

/** One row of an events table; `view` is where a click on the user goes (`events`, `feedback`). */
function eventRow(e, view) {
  const feedbackOnly = view === "feedback";
  const what = e.kind === "feedback"
    ? `rating ${e.rating}${e.comment ? `: ${e.comment}` : ""}`
    : e.kind === "web"
      ? `${e.category ?? "(no category)"}/${e.name} in session ${e.session_id}`
      : `${e.noun} ${e.verb}`;
  // An event that failed its schema is in the error log and no rule counted it: said on its
  // row, with the way to the entry.
  const type = e.kind === "activity" ? `activity ${e.noun}/${e.verb}`
    : e.kind === "web" ? `web ${e.category ?? ""}/${e.name}` : e.kind;
  const invalid = e.invalid
    ? [" ", el("a", { class: "status invalid", href: `#/errors${query({ type })}`, text: "invalid", title: "failed its schema: see the error log for this type" })]
    : [];
  return el("tr", { dataset: { event: e.id, invalid: e.invalid ? "true" : "false" } },
    el("td", { text: formatTime(e.received_at) }),
    el("td", {}, userLink(view, e.user), " ", userPageLink(e.user)),
    el("td", { class: "mono", text: e.id }),
    ...(feedbackOnly
      ? [el("td", { text: e.rating }), el("td", { class: "text" }, e.comment || "", ...invalid)]
      : [el("td", { text: e.kind }), el("td", { class: "text" }, what, ...invalid)]),
    el("td", {}, details(e)));
}

async function renderAlerts(main, params) {
  main.append(el("h1", { text: "Alerts" }),
    filterForm([
      { name: "user", label: "User", type: "number", placeholder: "all users" },
      { name: "rule", label: "Rule", placeholder: "all rules" },
      { name: "status", label: "Status", options: ALERT_STATUS_FILTERS },
      { name: "action", label: "Action", options: ALERT_ACTION_FILTERS },
      { name: "from", label: "From", type: "datetime-local" },
      { name: "to", label: "To", type: "datetime-local" },
    ], params, (values) => setHashParams("alerts", values)));
  const filters = Object.fromEntries(params.entries());
  await pagedTable(main, "/alerts", filters, ALERT_HEADINGS, alertRow, "alerts-table");
}

/** The time presets of every listing's filters: id, label, seconds up to now. */
const TIME_PRESETS = [
  ["last-15-minutes", "Last 15 min", 15 * 60],
  ["last-hour", "Last hour", 3600],
  ["last-day", "Last day", 24 * 3600],
  ["last-week", "Last week", 7 * 24 * 3600],
];

/** The alert browser's action choices. */
const ALERT_ACTION_FILTERS = [["", "any"], ["sms_user", "SMS"], ["notify_operator", "operator"]];

/** The alert browser's status choices: one status, or the ones an operator looks at together. */
const ALERT_STATUS_FILTERS = [
  ["", "any"],
  ["sent,delivered", "sent or delivered"],
  ["failed,undeliverable,unconfirmed", "not delivered"],
  ["deferred", "deferred (quiet hours)"],
  ["expired", "expired"],
  ["suppressed", "suppressed"],
  ["silenced", "silenced"],
  ["grouped", "grouped (in a group message)"],
  ["pending,sending", "in flight"],
];

const ALERT_HEADINGS = ["Fired", "Rule", "User", "Action", "Status", "Message", ""];

function alertRow(a) {
  return el("tr", { dataset: { alert: a.alert_id, rule: a.rule_id } },
    el("td", {}, formatTime(a.fired_at),
      // When it went out: a replayed event's alert fires at the event's time, maybe long before.
      a.settled_at && ["sent", "delivered", "failed"].includes(a.status)
        ? el("div", { class: "hint settled-at", text: `sent ${formatTime(a.settled_at)}` }) : null),
    el("td", {}, el("a", { href: `#/rules/${encodeURIComponent(a.rule_id)}`, class: "mono", text: a.rule_id })),
    el("td", {}, userLink("alerts", a.user),
      // User 0 is the fleet's (group messages, heartbeats): no one's page to explain them.
      a.user === 0 ? null : [" ", userPageLink(a.user, a.alert_id)]),
    el("td", {}, a.action === "notify_operator" ? `operator (${a.severity || ""})` : "SMS",
      a.action === "notify_operator" && !RESERVED_RULES.includes(a.rule_id)
        ? [" ", el("a", { href: `#/silences${query({ rule: a.rule_id })}`, class: "silence-rule", title: `silence ${a.rule_id}'s operator alerts`, text: "silence" })]
        : null),
    el("td", {}, el("span", { class: `status ${a.status}`, text: a.status }),
      a.deliver_at ? el("div", { class: "hint deliver-at", text: `goes out ${formatTime(a.deliver_at)}` }) : null,
      a.receipt ? el("div", { class: "hint receipt", text: receiptText(a.receipt) }) : null,
      a.grouped_in ? el("div", { class: "hint grouped-in mono", text: `in ${a.grouped_in}` }) : null,
      typeof a.members === "number" ? el("div", { class: "hint group-tally", text: groupText(a) }) : null,
      a.reason ? el("div", { class: "hint", text: a.reason }) : null),
    el("td", { class: "text alert-text", text: a.text }),
    el("td", {}, details(a)));
}

/** A group message's tally: how many alerts it gathered, fired over what span. */
function groupText(a) {
  const span = a.first_member_at ? `, fired ${formatTime(a.first_member_at)} to ${formatTime(a.last_member_at)}` : "";
  return `group message: ${a.members} alert${a.members === 1 ? "" : "s"}${span}`;
}

/** The carrier's answer for a sent SMS: its words, what it cost, how long it took. */
function receiptText(r) {
  const parts = [r.provider_response];
  if (typeof r.price_usd === "number") parts.push(`$${r.price_usd}`);
  if (typeof r.dwell_ms === "number") parts.push(`${r.dwell_ms} ms to the carrier`);
  if (r.carrier) parts.push(r.carrier);
  return parts.filter(Boolean).join(" · ");
}

/** Cuba's own notices: not silenced (they say a limit was reached). */
const RESERVED_RULES = ["sms-budget", "operator-cap"];

/** The user's page; from an alert's row, with that alert and the events it fired on marked in
 * the timeline. */
function userPageLink(user, alertId) {
  return el("a", {
    href: `#/users/${encodeURIComponent(user)}${alertId ? query({ alert: alertId }) : ""}`,
    class: "user-page",
    title: alertId ? "the user's timeline, this alert and its events marked" : "the user's page",
    text: alertId ? "why" : "page",
  });
}

/** How far back the user's timeline reads: days, label. */
const TIMELINE_SPANS = [["1", "last day"], ["7", "last 7 days"], ["30", "last 30 days"], ["90", "last 90 days"]];

/**
 * One user in one place: the profile (the phone and whether it is verified), then one timeline
 * of everything that happened to them, newest first: their events and feedback, their alerts
 * with delivery states and texts, the verification codes texted to them and their error-log
 * entries. What "why did this user get that SMS?" needs. `alert` in the URL marks one alert and
 * the events it fired on, `event` one event.
 */
async function renderUser(main, user, params) {
  main.append(el("h1", { text: `User ${user}` }));
  const { status, body } = await api("GET", `/users/${encodeURIComponent(user)}`);
  const profile = el("div", { class: "card", id: "user-profile" });
  if (status === 200) {
    appendAll(profile, [
      el("div", {}, el("strong", { text: "Phone " }), body.phone || "none",
        " ", el("span", { class: `status ${body.phone_verified ? "sent" : "pending"}`, text: body.phone_verified ? "verified" : "not verified" })),
      el("div", { id: "user-locality" }, el("strong", { text: "Time zone " }), body.time_zone || "deployment default",
        el("strong", { text: " · Language " }), body.locale || "deployment default"),
      el("div", { class: "hint", text: `profile updated ${formatTime(body.updated_at)}` }),
      body.code_expires_at ? el("div", { class: "hint", text: `a code is outstanding until ${formatTime(body.code_expires_at)}` }) : null,
      el("div", { id: "user-codes" }, el("strong", { text: "Verification codes texted in the last hour " }),
        (body.codes_sent_at || []).length ? body.codes_sent_at.map(formatTime).join(", ") : "none")]);
  } else if (status === 404) {
    profile.append(el("p", { class: "empty", text: "No profile: this user never set a phone number, so no SMS can reach them." }));
  } else {
    profile.append(el("div", { class: "error-box", text: errorText(body, status) }));
  }
  const days = TIMELINE_SPANS.some(([d]) => d === params.get("days")) ? params.get("days") : "7";
  const spanSelect = el("select", { id: "timeline-days" }, TIMELINE_SPANS.map(([value, label]) => el("option", { value, text: label })));
  spanSelect.value = days;
  spanSelect.addEventListener("change", () => {
    const next = { days: spanSelect.value };
    for (const key of ["alert", "event"]) if (params.get(key)) next[key] = params.get(key);
    location.hash = `#/users/${encodeURIComponent(user)}${query(next)}`;
  });
  main.append(profile,
    el("div", { class: "row" }, el("h2", { text: "Timeline" }), el("span", { class: "spacer" }),
      el("label", { for: "timeline-days", text: "Span " }), spanSelect,
      el("a", { href: `#/errors${query({ user })}`, text: "error log" }),
      el("a", { href: `#/alerts${query({ user })}`, text: "alerts" }),
      el("a", { href: `#/events${query({ user })}`, text: "events" })));
  const codes = status === 200 ? (body.codes_sent_at || []) : [];
  await userTimeline(main, user, Number(days), codes, params.get("alert"), params.get("event"));
}

/**
 * The timeline: the user's alerts, events and error-log entries, each read newest first page by
 * page, merged into one table. A row is shown once no unread page can hold anything newer: the
 * oldest row each unfinished listing has handed over bounds what may be shown.
 */
async function userTimeline(main, user, days, codes, markedAlert, markedEvent) {
  const from = String(Date.now() - days * 24 * 3600 * 1000);
  const sources = [
    { path: "/alerts", time: (a) => a.fired_at, row: timelineAlert },
    { path: "/events", time: (e) => e.received_at, row: timelineEvent },
    { path: "/errors", time: (e) => e.received_at, row: timelineError },
  ].map((s) => ({ ...s, buffer: [], cursor: null, done: false }));
  // The codes come with the profile: the last hour's, all at once.
  const codeSource = { time: (at) => at, row: timelineCode, buffer: [...codes].sort((a, b) => b - a), done: true };
  sources.push(codeSource);
  const body = el("tbody");
  const error = el("div", { class: "error-box" });
  const more = el("button", { type: "button", class: "secondary", id: "more-timeline", text: "Load more", hidden: true });
  const table = el("table", { id: "user-timeline", dataset: { user, days } },
    el("thead", {}, el("tr", {}, ["Time", "What", "Detail", "Status", ""].map((h) => el("th", { text: h })))), body);
  main.append(table, error, el("div", { class: "row" }, more));
  // Where an invalid event's error-log entry goes: onto the event's own row.
  const eventRows = new Map();
  let marked = null;
  const fill = async () => {
    for (const source of sources) {
      // A page a filter emptied says nothing about what is older: read on.
      for (let reads = 0; !source.done && !source.buffer.length && reads < 5; reads++) {
        const { status, body: page } = await api("GET", source.path + query({ user, from, limit: "50", cursor: source.cursor }));
        if (status !== 200) {
          error.textContent = errorText(page, status);
          source.done = true;
          break;
        }
        source.buffer.push(...page.items);
        source.cursor = page.next;
        source.done = !page.next;
      }
    }
  };
  const show = () => {
    body.querySelector("td.empty")?.parentElement.remove();
    const open = sources.filter((s) => !s.done && s.buffer.length);
    const horizon = open.length ? Math.max(...open.map((s) => s.time(s.buffer[s.buffer.length - 1]))) : -Infinity;
    const ready = [];
    for (const source of sources) {
      const keep = [];
      for (const item of source.buffer) (source.time(item) >= horizon ? ready : keep).push({ source, item });
      source.buffer = keep.map((r) => r.item);
    }
    ready.sort((a, b) => b.source.time(b.item) - a.source.time(a.item));
    // Events first among equals, so an entry's event is there to take it.
    for (const { source, item } of ready.filter((r) => r.source.path === "/events")) {
      const row = source.row(item, user);
      eventRows.set(item.id, row);
    }
    for (const { source, item } of ready) {
      if (source.path === "/errors" && eventRows.has(item.id)) {
        eventRows.get(item.id).querySelector("td.text").append(errorDetails(item));
        continue;
      }
      const row = source.path === "/events" ? eventRows.get(item.id) : source.row(item, user);
      row.dataset.at = String(source.time(item));
      body.append(row);
    }
    if (markedAlert && !marked) {
      marked = [...body.querySelectorAll("tr[data-alert]")].find((r) => r.dataset.alert === markedAlert) || null;
      marked?.classList.add("marked");
      marked?.setAttribute("aria-current", "true");
    }
    for (const id of firedOn(marked)) eventRows.get(id)?.classList.add("marked");
    if (markedEvent && !marked && eventRows.has(markedEvent)) {
      marked = eventRows.get(markedEvent);
      marked.classList.add("marked");
      marked.setAttribute("aria-current", "true");
    }
    if (!body.children.length) {
      body.append(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "Nothing in this span." })));
    }
  };
  const load = async () => {
    more.disabled = true;
    await fill();
    show();
    more.disabled = false;
    more.hidden = sources.every((s) => s.done && !s.buffer.length);
  };
  more.addEventListener("click", load);
  await load();
  // The marked alert, then the events it fired on (which came before it): read on, a little,
  // until they are all shown.
  const missing = () => ((markedAlert || markedEvent) && !marked) || firedOn(marked).some((id) => !eventRows.has(id));
  for (let reads = 0; !more.hidden && missing() && reads < 5; reads++) await load();
  if (marked) marked.scrollIntoView({ block: "center" });
  table.dataset.loaded = "true";
}

/** The ids of the events a timeline's alert row fired on. */
function firedOn(alertRow) {
  return alertRow ? (alertRow.dataset.events || "").split(" ").filter(Boolean) : [];
}

function timelineAlert(a) {
  const what = a.action === "notify_operator" ? `operator alert (${a.severity || "info"})` : "SMS to the user";
  return el("tr", { class: "timeline-alert", dataset: { alert: a.alert_id, rule: a.rule_id, events: (a.event_ids || []).join(" ") } },
    el("td", {}, formatTime(a.fired_at),
      a.settled_at && ["sent", "delivered", "failed"].includes(a.status)
        ? el("div", { class: "hint settled-at", text: `sent ${formatTime(a.settled_at)}` }) : null),
    el("td", {}, what, el("div", {}, "rule ", el("a", { href: `#/rules/${encodeURIComponent(a.rule_id)}`, class: "mono", text: a.rule_id }))),
    el("td", { class: "text alert-text" }, a.text,
      (a.event_ids || []).length
        ? el("div", { class: "hint fired-on" }, `fired on event${a.event_ids.length === 1 ? "" : "s"} `, el("span", { class: "mono", text: a.event_ids.join(", ") }))
        : null),
    el("td", {}, el("span", { class: `status ${a.status}`, text: a.status }),
      a.deliver_at ? el("div", { class: "hint deliver-at", text: `goes out ${formatTime(a.deliver_at)}` }) : null,
      a.receipt ? el("div", { class: "hint receipt", text: receiptText(a.receipt) }) : null,
      a.reason ? el("div", { class: "hint", text: a.reason }) : null),
    el("td", {}, details(a)));
}

function timelineEvent(e) {
  const what = e.kind === "feedback"
    ? `rating ${e.rating}${e.comment ? `: ${e.comment}` : ""}`
    : e.kind === "web"
      ? `${e.category ?? "(no category)"}/${e.name} in session ${e.session_id}`
      : `${e.noun} ${e.verb}`;
  return el("tr", { class: "timeline-event", dataset: { event: e.id, invalid: e.invalid ? "true" : "false" } },
    el("td", { text: formatTime(e.received_at) }),
    el("td", {}, e.kind === "feedback" ? "feedback" : `${e.kind} event`, el("div", { class: "hint mono", text: e.id })),
    el("td", { class: "text", text: what }),
    el("td", {}, e.invalid ? el("span", { class: "status invalid", text: "invalid" }) : el("span", { class: "status sent", text: "valid" })),
    el("td", {}, details(e)));
}

/** What the error log says of an event: its violations and where the entry stands. */
function errorDetails(entry) {
  const replayed = entry.status === "replayed"
    ? ` · replayed by ${entry.replayed_by || "?"} ${formatTime(entry.replayed_at)}` : ` · ${entry.status}`;
  return el("div", { class: "hint error-entry", dataset: { error: entry.id } },
    el("a", { href: `#/errors${query({ user: entry.user, type: entry.event_type })}`, text: "error log" }),
    `: ${entry.violations.map((v) => `${v.path}: ${v.message}`).join("; ")}${replayed}`);
}

function timelineError(entry) {
  return el("tr", { class: "timeline-error", dataset: { error: entry.id } },
    el("td", { text: formatTime(entry.received_at) }),
    el("td", {}, "invalid event", el("div", { class: "hint mono", text: entry.id })),
    el("td", { class: "text" }, entry.event_type, errorDetails(entry)),
    el("td", {}, el("span", { class: "status invalid", text: "invalid" })),
    el("td", {}, el("details", {}, el("summary", { text: "raw", "aria-label": `raw event ${entry.id}` }), el("pre", { text: entry.raw }))));
}

function timelineCode(at) {
  return el("tr", { class: "timeline-code" },
    el("td", { text: formatTime(at) }),
    el("td", { text: "verification code" }),
    el("td", { class: "text", text: "a code was texted to the user's number (its value is never kept readable)" }),
    el("td", {}, el("span", { class: "status sent", text: "sent" })),
    el("td", {}));
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

/** A schema's id for an event type: `web page interaction/scroll` -> `web-page-interaction-scroll`. */
function schemaIdFor(eventType) {
  return eventType.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64) || "new-schema";
}

/** A JSON Schema that accepts `payload` as it is: each field with its type, nothing else. */
function inferredSchema(payload) {
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) return { type: "object" };
  const type = (v) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v;
  const properties = Object.fromEntries(Object.entries(payload).map(([name, v]) => [name, { type: type(v) }]));
  return { type: "object", properties, additionalProperties: false };
}

/** A first draft of the schema an error-log entry's event lacks: its type and its payload's
 * fields, to be checked and tightened before saving. */
function draftSchemaFor(entry, event) {
  const draft = { id: schemaIdFor(entry.event_type), description: `Drafted from ${entry.event_type} event ${entry.id}` };
  if (event.noun !== undefined || event.verb !== undefined) {
    return { ...draft, match: { kind: "activity", noun: event.noun, verb: event.verb }, schema: inferredSchema(event.properties) };
  }
  if (event.name !== undefined) {
    return { ...draft, match: { kind: "web", category: event.category ?? "", name: event.name }, schema: inferredSchema(event.data) };
  }
  return { ...draft, match: { kind: "feedback" }, schema: inferredSchema(event) };
}

/**
 * The schema editor. Opened from an error-log entry (`user` and `event` in the URL), it tests
 * that entry's event, drafts a new schema from it when the type has none, and after a save leads
 * to the open entries of the type, to replay them.
 */
async function renderSchemaEditor(main, id, params = new URLSearchParams()) {
  let record = null;
  if (id) {
    const { status, body } = await api("GET", `/schemas/${encodeURIComponent(id)}`);
    if (status !== 200) {
      main.append(el("h1", { text: `Schema ${id}` }), el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    record = body;
  }
  let entry = null;
  let failed = null;
  if (params.get("user") && params.get("event")) {
    const { status, body } = await api("GET", `/errors/${encodeURIComponent(params.get("user"))}/${encodeURIComponent(params.get("event"))}`);
    if (status === 200) {
      entry = body;
      try {
        failed = JSON.parse(entry.raw);
      } catch {
        failed = null;
      }
    }
  }
  const doc = record ? record.schema : entry && failed ? draftSchemaFor(entry, failed) : NEW_SCHEMA;
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
      if (entry) {
        // Opened to fix an entry: that entry, then the type's open entries of the last 7 days
        // (the most one replay request spans), are replayed against the saved schema; those
        // still invalid stay open, with their new violations.
        const own = await api("POST", `/errors/${encodeURIComponent(entry.user)}/${encodeURIComponent(entry.id)}/replay`);
        const replay = await api("POST", "/errors/replay",
          { type: entry.event_type, from: Date.now() - 7 * 24 * 3600 * 1000 + 60000, to: Date.now() });
        const ownReplayed = own.status === 200 && own.body.outcome === "replayed" ? 1 : 0;
        const ownInvalid = own.status === 200 && own.body.outcome === "still_invalid" ? 1 : 0;
        toast(replay.status === 200
          ? `Saved ${body.id} (version ${body.version}): ${replay.body.replayed + ownReplayed} replayed, ${replay.body.still_invalid + ownInvalid} still invalid${replay.body.next ? "; more remain, replay again" : ""}.`
          : `Saved ${body.id} (version ${body.version}), but the replay failed: ${errorText(replay.body, replay.status)}`);
        location.hash = `#/errors${query({ type: entry.event_type })}`;
        return;
      }
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
  const testEvent = el("textarea", { id: "schema-test-event", rows: 8, spellcheck: "false", value: pretty(failed || {
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
    appendAll(testResult, [el("p", {}, el("span", { class: `status ${body.valid ? "sent" : "undeliverable"}`, text: body.valid ? "valid" : "invalid" })),
      body.violations.length ? el("ul", {}, body.violations.map((v) => el("li", { text: `${v.path} (${v.kind}): ${v.message}` }))) : null]);
  };
  appendAll(main, [
    el("h1", { text: record ? `Schema ${record.id}` : "New schema" }),
    record ? el("p", { class: "hint", text: `Version ${record.version}, last changed by ${record.updated_by} at ${formatTime(record.updated_at)}.` }) : null,
    entry ? el("p", { class: "warning", id: "fixing-entry", text: `Fixing for the error log: ${entry.event_type} event ${entry.id} of user ${entry.user} (${entry.violations.map((v) => `${v.path}: ${v.message}`).join("; ")}). ${record ? "" : "The draft below accepts that event's fields as they are: check it before saving. "}The test on the right holds that event. Saving replays the type's open entries.` }) : null,
    el("div", { class: "two" },
      el("div", { class: "card" },
        el("label", { for: "schema-document", text: "Schema document" }),
        el("p", { class: "hint", text: "{\"id\", \"description\", \"match\": {\"kind\": \"activity\", \"noun\", \"verb\"} | {\"kind\": \"web\", \"category\", \"name\"} | {\"kind\": \"feedback\"}, and \"schema\" (a JSON Schema for the payload: properties, data, or the feedback) or \"accept_without_schema\": true. Names may use * as a wildcard." }),
        text, problems,
        el("div", { class: "row" },
          el("button", { type: "button", id: "save-schema", onclick: save,
            text: `${record ? `Save version ${record.version + 1}` : "Create schema"}${entry ? ` and replay ${entry.event_type}` : ""}` }),
          el("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/schemas"; }, text: "Back to schemas" }))),
      el("div", { class: "card" },
        el("h2", { text: "Test an event" }),
        el("p", { class: "hint", text: "Checks an event (either envelope) against the document on the left, saved or not. Nothing is stored." }),
        el("label", { for: "schema-test-event", text: "Event to test" }),
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
      { name: "user", label: "User", type: "number", placeholder: "all users" },
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
    if (filters.user) request.user = Number(filters.user);
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
      // Straight to the schema that refused it (or a draft of the missing one), with the event.
      const fixTarget = entry.schema ? encodeURIComponent(entry.schema.id) : "new";
      const fix = entry.status === "replayed" ? null : el("a", {
        class: "fix-schema", href: `#/schemas/${fixTarget}${query({ user: entry.user, event: entry.id })}`,
        text: entry.schema ? "Fix schema" : "Create schema", title: `the schema for ${entry.event_type}, tested on this event`,
      });
      return el("tr", { dataset: { error: entry.id } },
        el("td", { text: formatTime(entry.received_at) }),
        el("td", {}, el("a", { href: `#/users/${encodeURIComponent(entry.user)}`, text: entry.user })),
        el("td", { class: "mono", text: entry.event_type }),
        violationsCell,
        statusCell,
        el("td", {}, replay, fix ? el("div", {}, fix) : null),
        el("td", {}, el("details", {}, el("summary", { text: "raw", "aria-label": `raw event ${entry.id}` }), el("pre", { text: raw }))));
    }, "errors-table");
}
