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
    const { status, body: page } = await api("GET", path + query({ ...params, cursor }));
    more.disabled = false;
    if (status !== 200) {
      error.textContent = errorText(page, status);
      return;
    }
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
    el("td", {}, userLink(view, e.user)),
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
    el("td", {}, userLink("alerts", a.user), " ", userPageLink(a.user)),
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

function userPageLink(user) {
  return el("a", { href: `#/users/${encodeURIComponent(user)}`, class: "user-page", title: "the user's page", text: "page" });
}

/**
 * One user in one place: the profile (the phone and whether it is verified), then their alerts
 * and their events, newest first: what "why did this user get that SMS?" needs.
 */
async function renderUser(main, user) {
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
  main.append(profile, el("h2", { text: "Alerts" }));
  await pagedTable(main, "/alerts", { user }, ALERT_HEADINGS, alertRow, "user-alerts", "more-alerts");
  main.append(el("h2", { text: "Events" }));
  await pagedTable(main, "/events", { user }, EVENT_HEADINGS, (e) => eventRow(e, "events"), "user-events", "more-events");
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
    appendAll(testResult, [el("p", {}, el("span", { class: `status ${body.valid ? "sent" : "undeliverable"}`, text: body.valid ? "valid" : "invalid" })),
      body.violations.length ? el("ul", {}, body.violations.map((v) => el("li", { text: `${v.path} (${v.kind}): ${v.message}` }))) : null]);
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
