// Cuba admin UI: the Silences page: pause a rule's operator alerts (all users', or one user's) for a while,
// with a reason; the list shows what is active, pending and recently ended, and ends one early.
// Silenced alerts are still recorded (status "silenced" in the alert browser), never published.
// Uses el/api/... from dom.js; writes data to the page only through textContent and attributes.

const SILENCE_DURATIONS = [
  ["15", "15 minutes"], ["60", "1 hour"], ["240", "4 hours"], ["1440", "1 day"], ["10080", "7 days"],
];
/** How long a recurring silence keeps recurring. */
const RECURRING_SPANS = [["10080", "1 week"], ["43200", "30 days"], ["129600", "90 days"], ["259200", "180 days"]];
const REPEATS = [["", "does not repeat"], ["daily", "every day"], ["weekly", "every week"]];
const WINDOWS = [["30", "30 minutes"], ["60", "1 hour"], ["120", "2 hours"], ["240", "4 hours"], ["480", "8 hours"]];

async function renderSilences(main, params) {
  main.append(el("h1", { text: "Silences" }),
    el("p", { class: "hint", text: "A silence pauses a rule's operator alerts during an incident or a maintenance. The rule keeps running: its alerts are recorded as silenced (visible in the alert browser), not published. A silence ends by itself." }));
  const formBox = el("section", { class: "card", id: "new-silence", "aria-labelledby": "new-silence-title" });
  const listBox = el("section", { id: "silence-list" });
  main.append(formBox, listBox);
  const reload = () => renderSilenceList(listBox);
  await renderSilenceForm(formBox, reload, params.get("rule"));
  await reload();
}

/** `preset`: the rule to offer first (from an alert's *silence* link). */
async function renderSilenceForm(box, reload, preset) {
  const { status, body } = await api("GET", "/rules");
  const slots = {};
  const rule = el("select", { id: "silence-rule", required: true });
  const operatorRules = status === 200
    ? body.rules.filter((r) => r.rule && r.rule.action && r.rule.action.type === "notify_operator")
    : [];
  const first = operatorRules.some((r) => r.id === preset) ? preset : operatorRules[0]?.id ?? "";
  options(rule, operatorRules.map((r) => [r.id, r.id]), first);
  const user = el("input", { type: "text", id: "silence-user", inputmode: "numeric", class: "short", placeholder: "all users" });
  const minutes = options(el("select", { id: "silence-minutes" }), SILENCE_DURATIONS, "60");
  const repeat = options(el("select", { id: "silence-repeat" }), REPEATS, "");
  const windowMinutes = options(el("select", { id: "silence-window" }), WINDOWS, "60");
  const startsAt = el("input", { type: "datetime-local", id: "silence-starts" });
  // A maintenance window: it starts at the first window (now when left empty), lasts
  // `window` each time, and repeats over a longer span than a one-off silence may last.
  const windowField = labelled("Each window lasts", windowMinutes, slots, "window_minutes");
  const startField = labelled("First window starts", startsAt, slots, "starts_at", "Empty: now. In your browser's time.");
  const showRecurrence = () => {
    const recurring = repeat.value !== "";
    windowField.hidden = !recurring;
    startField.hidden = !recurring;
    const spans = recurring ? RECURRING_SPANS : SILENCE_DURATIONS;
    options(clear(minutes), spans, recurring ? "43200" : "60");
  };
  repeat.addEventListener("change", showRecurrence);
  const reason = el("textarea", { id: "silence-reason", rows: 2, maxlength: 500, placeholder: "Payments provider maintenance until 14:00" });
  const error = el("div", { class: "error-box", id: "silence-error", hidden: true });
  const submit = el("button", { type: "submit", id: "create-silence", text: "Silence" });
  const form = el("form", { novalidate: true },
    labelled("Rule (its operator alerts)", rule, slots, "rule_id"),
    labelled("User", user, slots, "user", "Leave empty to silence the rule for every user."),
    labelled("Repeats", repeat, slots, "repeat"),
    windowField, startField,
    labelled("For", minutes, slots, "minutes"),
    labelled("Reason", reason, slots, "reason"),
    error, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const { slot } of Object.values(slots)) slot.textContent = "";
    error.hidden = true;
    const request = { rule_id: rule.value, minutes: Number(minutes.value), reason: reason.value };
    if (repeat.value) {
      request.repeat = repeat.value;
      request.window_minutes = Number(windowMinutes.value);
      const start = localInputToMillis(startsAt.value);
      if (start) request.starts_at = start;
    }
    const userText = user.value.trim();
    if (userText) {
      if (!/^\d+$/.test(userText)) {
        slots.user.slot.textContent = "A user id is a whole number.";
        user.focus();
        return;
      }
      request.user = Number(userText);
    }
    submit.disabled = true;
    const answer = await api("POST", "/silences", request);
    submit.disabled = false;
    if (answer.status === 201) {
      reason.value = "";
      user.value = "";
      toast(`Silenced ${answer.body.rule_id}${answer.body.user !== undefined ? ` for user ${answer.body.user}` : ""} until ${formatTime(answer.body.ends_at)}.`);
      await reload();
      return;
    }
    const field = answer.body?.error?.field;
    if (field && slots[field]) {
      slots[field].slot.textContent = answer.body.error.message;
      slots[field].control.focus();
    } else {
      error.hidden = false;
      error.textContent = errorText(answer.body, answer.status);
    }
  });
  clear(box).append(el("h2", { id: "new-silence-title", text: "New silence" }),
    operatorRules.length ? form : el("p", { class: "empty", text: "No rule alerts the operator: nothing to silence." }));
  showRecurrence();
}

async function renderSilenceList(box) {
  const { status, body } = await api("GET", "/silences");
  if (status !== 200) {
    clear(box).append(el("div", { class: "error-box", text: errorText(body, status) }));
    return;
  }
  if (!body.items.length) {
    clear(box).append(el("p", { class: "empty", id: "no-silences", text: "No silences: every operator alert is published." }));
    return;
  }
  const rows = body.items.map((s) => {
    const action = s.state === "expired"
      ? el("td", { class: "hint", text: s.ended_by ? `ended by ${s.ended_by}` : "" })
      : el("td", {}, el("button", {
        type: "button", class: "secondary", text: "End now", "aria-label": `End the silence of ${s.rule_id}`,
        onclick: async (e) => {
          e.target.disabled = true;
          const answer = await api("DELETE", `/silences/${encodeURIComponent(s.id)}`);
          if (answer.status !== 200) toast(errorText(answer.body, answer.status));
          await renderSilenceList(box);
        },
      }));
    return el("tr", { dataset: { silence: s.id, state: s.state } },
      el("td", {}, el("span", { class: `status silence-${s.state}`, text: s.state })),
      el("td", {}, el("a", { class: "mono", href: `#/alerts${query({ rule: s.rule_id })}`, text: s.rule_id })),
      el("td", {}, s.user !== undefined ? el("a", { href: `#/users/${encodeURIComponent(s.user)}`, text: String(s.user) }) : "all users"),
      el("td", {}, formatTime(s.starts_at),
        s.repeat ? el("div", { class: "hint recurrence", text: `${s.repeat.window_minutes} min every ${s.repeat.every}` }) : null,
        s.next_window_at ? el("div", { class: "hint next-window", text: `next ${formatTime(s.next_window_at)}` }) : null,
        s.state === "active" && s.repeat ? el("div", { class: "hint window-ends", text: `this window ends ${formatTime(s.window_ends_at)}` }) : null),
      el("td", { text: formatTime(s.ends_at) }),
      el("td", { class: "text", text: s.reason }),
      el("td", { text: s.created_by }),
      action);
  });
  clear(box).append(el("table", { id: "silences-table" },
    el("thead", {}, el("tr", {}, ["State", "Rule", "User", "From", "Until", "Reason", "By", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows)));
}
