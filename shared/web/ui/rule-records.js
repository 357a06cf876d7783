// Cuba admin UI: a saved rule's health, backtest and history of versions, shown under the editor,
// and the health cell of the rules list.
// Uses el/api/pretty/... from dom.js; writes data to the page only through textContent and
// attributes.
"use strict";

function savedBacktest(record) {
  const backtestResult = el("div", { class: "result", id: "backtest-result" });
  const btUser = el("input", { type: "number", min: "0", placeholder: "all users", id: "bt-user" });
  const btFrom = el("input", { type: "datetime-local", id: "bt-from", value: millisToLocalInput(Date.now() - 24 * 3600 * 1000) });
  const btTo = el("input", { type: "datetime-local", id: "bt-to", value: millisToLocalInput(Date.now()) });
  const backtest = async () => {
    clear(backtestResult).append(el("p", { class: "hint", text: "Replaying…" }));
    const request = { from: localInputToMillis(btFrom.value), to: localInputToMillis(btTo.value) };
    if (btUser.value !== "") request.user = Number(btUser.value);
    const { status, body } = await api("POST", `/rules/${encodeURIComponent(record.id)}/backtest`, request);
    clear(backtestResult);
    if (status !== 200) {
      backtestResult.append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    backtestResult.append(el("p", { text: `${body.events_replayed} event(s) replayed; ${body.alerts.length} alert(s) would have fired for ${body.users} user(s).` }));
    if (body.alerts.length) {
      backtestResult.append(el("table", {},
        el("thead", {}, el("tr", {}, ["At", "User", "Message"].map((h) => el("th", { text: h })))),
        el("tbody", {}, body.alerts.map((a) => el("tr", {},
          el("td", { text: formatTime(a.fired_at) }), el("td", {}, el("a", { href: `#/users/${encodeURIComponent(a.user)}`, text: a.user })), el("td", { class: "text", text: a.text }))))));
    }
  };
  return el("div", { class: "card" },
    el("h2", { text: "Backtest" }),
    el("p", { class: "hint", text: "Replays the saved version over stored events and lists what it would have fired. Nothing is sent." }),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "bt-user", text: "User" }), btUser),
      el("div", {}, el("label", { for: "bt-from", text: "From" }), btFrom),
      el("div", {}, el("label", { for: "bt-to", text: "To" }), btTo),
      el("button", { type: "button", id: "backtest", onclick: backtest, text: "Backtest" })),
    backtestResult);
}

function ruleHistory(record) {
  const history = el("div", { class: "card" }, el("h2", { text: "History" }));
  api("GET", `/rules/${encodeURIComponent(record.id)}/versions`).then(({ status, body }) => {
    if (status !== 200) return;
    history.append(el("table", {},
      el("thead", {}, el("tr", {}, ["Version", "Change", "By", "At"].map((h) => el("th", { text: h })))),
      el("tbody", {}, body.versions.map((v) => el("tr", {},
        el("td", { class: "mono", text: v.version }), el("td", { text: v.action }),
        el("td", { text: v.updated_by }), el("td", { text: formatTime(v.updated_at) }))))));
  }).catch(() => {});
  return history;
}

/** What a rule did lately, in a line: fired and matched counts, and when it last fired. */
function healthLine(h) {
  const last = h.last_fired_at ? `, last ${formatTime(h.last_fired_at)}` : "";
  return `fired ${h.fired}, matched ${h.matched} in ${h.days.length} days${last}`;
}

/** A rule's warnings, each a line that cannot be missed (`data-warning` holds its code). */
function healthWarnings(h) {
  return h.warnings.map((w) => el("div", { class: "warning health-warning", dataset: { warning: w.code }, text: w.message }));
}

/** The rule page's health card: warnings first, then each day's counts. */
function ruleHealth(record) {
  const card = el("div", { class: "card", id: "rule-health" }, el("h2", { text: "Health (7 days)" }));
  api("GET", `/rule-health${query({ rule: record.id })}`).then(({ status, body }) => {
    if (status !== 200) {
      card.append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    const h = body.rules[0];
    const statuses = (counts) => Object.entries(counts.statuses).map(([k, n]) => `${k} ${n}`).join(", ");
    card.append(
      ...healthWarnings(h),
      el("p", { id: "rule-health-summary", text: `${h.watches ? `Watches ${h.watches}: ` : ""}${healthLine(h)}.` }),
      el("table", { id: "rule-health-days" },
        el("caption", { class: "visually-hidden", text: "What the rule did each day (UTC)" }),
        el("thead", {}, el("tr", {}, ["Day (UTC)", "Matched", "Fired", "How they went"].map((t) => el("th", { text: t })))),
        el("tbody", {}, h.days.slice().reverse().map((d) => el("tr", {},
          el("td", { text: d.day }), el("td", { text: d.matched }), el("td", { text: d.fired }),
          el("td", { text: statuses(d) }))))));
  }).catch(() => {});
  return card;
}
