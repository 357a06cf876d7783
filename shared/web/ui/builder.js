// Cuba admin UI: the rule editor, a form generated from the rule language and the known event
// types (rule-form.js translates between the form and the rule document), with a live preview
// (the rule's 7-day count and its message rendered against a real event) and the JSON mode.
// Uses el/api/pretty/... from dom.js; like every view, it writes data to the page only through
// textContent and attributes.
"use strict";

// ---- the editor ------------------------------------------------------------------------------

async function renderEditor(main, id) {
  const [langAnswer, typesAnswer, recordAnswer] = await Promise.all([
    api("GET", "/rule-language"),
    api("GET", `/event-types?days=${PREVIEW_DAYS}`),
    id ? api("GET", `/rules/${encodeURIComponent(id)}`) : Promise.resolve(null),
  ]);
  for (const answer of [langAnswer, typesAnswer, recordAnswer]) {
    if (answer && answer.status !== 200) {
      main.append(el("h1", { text: id ? `Rule ${id}` : "New rule" }), el("div", { class: "error-box", text: errorText(answer.body, answer.status) }));
      return;
    }
  }
  const lang = langAnswer.body;
  const catalogue = typesAnswer.body.types;
  const record = recordAnswer ? recordAnswer.body : null;
  const startDoc = record ? record.rule : NEW_RULE_DOC;
  const opened = formFor(startDoc, lang);
  let model = opened.model || null;
  let mode = model ? "form" : "json";

  // ---- layout
  const slots = {};
  const general = el("div", { class: "error-box", id: "rule-problems" });
  const save = el("button", { type: "submit", id: "save-rule", text: record ? `Save version ${record.version + 1}` : "Create rule" });
  const formMode = el("button", { type: "button", id: "mode-form", class: "tab", "aria-pressed": "true", text: "Form" });
  const jsonMode = el("button", { type: "button", id: "mode-json", class: "tab", "aria-pressed": "false", text: "JSON" });
  const jsonNote = el("div", { class: "hint", id: "json-note", role: "status" });
  const jsonText = el("textarea", { id: "rule-json", rows: 18, spellcheck: "false", "aria-describedby": "json-note" });
  const jsonError = el("div", { class: "field-error", id: "error-json" });
  const formBox = el("div", { id: "rule-builder" });
  const jsonBox = el("div", { id: "rule-json-box" }, el("label", { for: "rule-json", text: "Rule document (JSON)" }), jsonNote, jsonText, jsonError);
  const form = el("form", { class: "card", id: "rule-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(); } },
    el("div", { class: "row tabs", role: "group", "aria-label": "Editor mode" }, formMode, jsonMode),
    formBox, jsonBox, general,
    el("div", { class: "row" }, save,
      el("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/rules"; }, text: "Back to rules" }),
      record ? el("button", { type: "button", class: "danger", id: "delete-rule", onclick: () => remove(), text: "Delete" }) : null));

  const previewMessage = el("p", { class: "preview-text", id: "preview-message" });
  const previewTranslations = el("div", { id: "preview-translations" });
  const previewEvent = el("p", { class: "hint", id: "preview-event" });
  const previewCount = el("p", { id: "preview-count", "aria-live": "polite" });
  const previewJson = el("pre", { id: "preview-json" });
  const previews = el("div", { class: "card", id: "rule-previews" },
    el("h2", { text: "Message" }), previewMessage, previewTranslations, previewEvent,
    el("h2", { text: `Last ${PREVIEW_DAYS} days` }), previewCount,
    el("details", {}, el("summary", { text: "Rule JSON" }), previewJson));

  appendAll(main, [el("h1", { text: record ? `Rule ${record.id}` : "New rule" }),
    record ? el("p", { class: "hint", text: `Version ${record.version}, last changed by ${record.updated_by} at ${formatTime(record.updated_at)}.` }) : null,
    el("div", { class: "builder" }, form, previews)]);

  // ---- the form, rebuilt when its shape changes (type, condition, clauses)
  const typeFields = () => {
    const kind = model.event.kind;
    const names = model.event.names;
    const exact = catalogue.find((t) => t.pattern.kind === kind &&
      Object.entries(t.pattern).every(([k, v]) => k === "kind" || names[k] === v));
    if (exact) return exact.fields;
    // No such type known: offer the fields every event of the kind carries.
    const spec = lang.event_kinds.find((k) => k.kind === kind);
    return spec ? spec.fields.map((path) => ({ path, types: [] })) : [];
  };
  // Lists that follow the chosen event type; refreshed in place so typing never loses focus.
  const fieldList = el("datalist", { id: "type-fields" });
  const numericList = el("datalist", { id: "numeric-fields" });
  // `group_by`'s choices: each user's (the default), everyone's, or a field of the type.
  const groupList = el("datalist", { id: "group-by-choices" });
  const chipsBox = el("div", { class: "chips", role: "group", "aria-label": "Insert a placeholder" });
  // Where a placeholder chip writes: the default message, or the language last typed in.
  let messageTarget = null;
  const refreshFields = () => {
    const fields = typeFields();
    clear(fieldList).append(...fields.map((f) => el("option", { value: f.path, label: f.types.join(" | ") || "type unknown" })));
    clear(numericList).append(...fields.filter((f) => f.types.some((t) => t === "number" || t === "integer"))
      .map((f) => el("option", { value: f.path })));
    clear(groupList).append(
      el("option", { value: "user", label: "each user's events (the default)" }),
      el("option", { value: "all", label: "all users' events together" }),
      ...fields.filter((f) => !f.types.includes("object")).map((f) => el("option", { value: f.path, label: "each value's events, whoever sent them" })));
    // A heartbeat, or a window across users, fires for no one event: only its own
    // placeholders mean anything.
    const heartbeat = model.condition.type === "heartbeat";
    const grouped = model.condition.type === "window" && acrossUsers();
    const placeholders = [
      ...(heartbeat || grouped ? [] : fields.filter((f) => !f.types.includes("object")).map((f) => f.path)),
      ...lang.placeholders.always,
      ...(model.condition.type === "window" ? (grouped ? lang.placeholders.group : lang.placeholders.window) : []),
      ...(heartbeat ? lang.placeholders.heartbeat || [] : []),
    ];
    clear(chipsBox).append(el("span", { class: "hint", text: "Insert: " }), ...placeholders.map((p) => chip(p)));
    for (const row of formBox.querySelectorAll(".clause")) row.dispatchEvent(new Event("fields"));
    changed();
  };

  /** Whether the window counts events across users (`group_by` is `all` or a field). */
  const acrossUsers = () => {
    const g = (model.condition.values.group_by || "").trim();
    return g !== "" && g !== "user";
  };

  let check = () => {};
  const changed = () => {
    check();
    schedulePreview();
  };

  /** Kind select plus the kind's type fields, offering the catalogue's names. */
  const eventTypeInputs = (type, keyPrefix, idPrefix, legend, onShape) => {
    const box = el("fieldset", { class: "event-type" }, el("legend", { text: legend }));
    const kindSelect = options(el("select", { id: `${idPrefix}-kind` }),
      lang.event_kinds.map((k) => [k.kind, k.kind]), type.kind);
    const known = el("select", { id: `${idPrefix}-type` });
    const knownPairs = [["", "choose a known type…"], ...catalogue.map((t, i) => [String(i),
      `${t.label}${t.seen ? ` (${t.seen} in ${PREVIEW_DAYS} days${t.invalid ? `, ${t.invalid} invalid` : ""})` : " (in the schema registry)"}`])];
    options(known, knownPairs, "");
    known.addEventListener("change", () => {
      const t = catalogue[Number(known.value)];
      if (!t) return;
      type.kind = t.pattern.kind;
      type.names = {};
      for (const [k, v] of Object.entries(t.pattern)) if (k !== "kind") type.names[k] = v;
      onShape();
    });
    kindSelect.addEventListener("change", () => {
      type.kind = kindSelect.value;
      type.names = {};
      onShape();
    });
    box.append(labelled("Known event types", known, slots, `${keyPrefix}.known`),
      labelled("Kind", kindSelect, slots, `${keyPrefix}.kind`));
    const spec = lang.event_kinds.find((k) => k.kind === type.kind);
    // A type whose recent events all failed their schema: a rule on it cannot fire yet, which
    // the dry run (on a sample that passes) would not say.
    const current = catalogue.find((t) => t.pattern.kind === type.kind &&
      spec.type_fields.every((f) => (t.pattern[f] ?? "") === (type.names[f] ?? "")));
    if (current && current.seen && current.invalid === current.seen) {
      box.append(el("p", { class: "warning", id: `${idPrefix}-all-invalid`,
        text: `All ${current.seen} recent events of this type failed their schema (they are in the error log): a rule on it fires only once a schema accepts them.` }));
    }
    for (const field of spec.type_fields) {
      const listId = `${idPrefix}-${field}-names`;
      const names = [...new Set(catalogue.filter((t) => t.pattern.kind === type.kind && t.pattern[field]).map((t) => t.pattern[field]))];
      const input = el("input", { type: "text", id: `${idPrefix}-${field}`, list: listId, value: type.names[field] || "", placeholder: `any ${field}`, autocomplete: "off" });
      input.addEventListener("input", () => { type.names[field] = input.value; changed(); });
      input.addEventListener("change", () => refreshFields());
      box.append(labelled(field[0].toUpperCase() + field.slice(1), input, slots, `${keyPrefix}.${field}`),
        el("datalist", { id: listId }, names.map((n) => el("option", { value: n }))));
    }
    return box;
  };

  const durationInputs = (key, label, field, value, onValue) => {
    const entry = value || { n: "", unit: "minutes" };
    const n = el("input", { type: "number", min: "0", step: "1", id: `cond-${field.name}`, value: entry.n, class: "short" });
    const unit = options(el("select", { id: `cond-${field.name}-unit`, "aria-label": `${label}: unit` }),
      UNITS.map(([u]) => [u, u]), entry.unit);
    const update = () => {
      onValue(n.value.trim() === "" ? undefined : { n: n.value, unit: unit.value });
      changed();
    };
    n.addEventListener("input", update);
    unit.addEventListener("change", update);
    const hint = [field.meaning, field.default ? `default: ${field.default}` : null,
      field.max ? `at most ${describeSeconds(field.max)}` : null].filter(Boolean).join("; ");
    const wrap = labelled(label, n, slots, key, hint);
    n.after(unit);
    return wrap;
  };

  const conditionInputs = () => {
    const box = el("fieldset", { id: "condition-fields" }, el("legend", { text: `The ${model.condition.type} condition` }));
    const spec = lang.conditions.find((s) => s.type === model.condition.type);
    const values = model.condition.values;
    for (const field of spec.fields) {
      const key = `condition.${field.name}`;
      // `seconds` is the condition's length; other names read as words (`cooldown_seconds`: Cooldown).
      const words = field.name === "seconds" ? (spec.type === "window" ? "window length" : "wait for")
        : field.name.replace(/_seconds$/, "").replace(/_/g, " ");
      const label = words.replace(/^./, (c) => c.toUpperCase()) + (field.required ? "" : " (optional)");
      if (field.input === "seconds") {
        box.append(durationInputs(key, label, field, values[field.name], (v) => {
          if (v) values[field.name] = v;
          else delete values[field.name];
        }));
      } else if (field.input === "count") {
        const input = el("input", { type: "number", min: String(field.min ?? 1), step: "1", id: `cond-${field.name}`, value: values[field.name] || "", class: "short" });
        input.addEventListener("input", () => {
          if (input.value.trim() === "") delete values[field.name];
          else values[field.name] = input.value;
          changed();
        });
        box.append(labelled(label, input, slots, key, field.meaning));
      } else if (field.input === "sum" || field.input === "distinct") {
        // A field and a threshold: what the window's events add up to, or how many different
        // values of the field they carry.
        const adding = field.input === "sum";
        const current = values[field.name] || { field: "", at_least: "" };
        const sumField = el("input", { type: "text", id: `cond-${field.name}-field`, list: adding ? "numeric-fields" : null, value: current.field, autocomplete: "off", placeholder: adding ? "properties.amount" : "properties.merchant" });
        const atLeast = el("input", { type: "number", id: `cond-${field.name}-at_least`, value: current.at_least, class: "short", min: adding ? null : String(field.min ?? 2), step: adding ? null : "1" });
        const update = () => {
          if (sumField.value.trim() === "" && atLeast.value.trim() === "") delete values[field.name];
          else values[field.name] = { field: sumField.value, at_least: atLeast.value };
          changed();
        };
        sumField.addEventListener("input", update);
        atLeast.addEventListener("input", update);
        const slot = el("div", { class: "field-error", id: `error-condition-${field.name}`, dataset: { key } });
        slots[key] = { slot, control: sumField };
        box.append(el("fieldset", { class: "sum" }, el("legend", { text: `${label}: ${field.meaning}` }),
          el("div", { class: "row" },
            el("div", {}, el("label", { for: sumField.id, text: adding ? "Field to add up" : "Field whose different values count" }), sumField),
            el("div", {}, el("label", { for: atLeast.id, text: adding ? "At least" : "At least (different values)" }), atLeast)),
          slot));
      } else if (field.input === "group_by") {
        const input = el("input", { type: "text", id: `cond-${field.name}`, list: "group-by-choices", value: values[field.name] || "", autocomplete: "off", placeholder: field.default || "user" });
        let was = acrossUsers();
        input.addEventListener("input", () => {
          if (input.value.trim() === "") delete values[field.name];
          else values[field.name] = input.value;
          // The message's placeholders differ across users: offered anew when that changes.
          if (acrossUsers() !== was) {
            was = acrossUsers();
            refreshFields();
          } else {
            changed();
          }
        });
        box.append(labelled("Group by (optional)", input, slots, key, field.meaning), groupList);
      } else if (field.input === "pattern") {
        if (!values[field.name]) values[field.name] = { kind: "feedback", names: {} };
        box.append(eventTypeInputs(values[field.name], key, `cond-${field.name}`, `${label}: ${field.meaning}`, () => rebuild()));
        const slot = el("div", { class: "field-error", id: `error-condition-${field.name}`, dataset: { key } });
        slots[key] = { slot, control: box.lastElementChild };
        box.append(slot);
      }
    }
    box.hidden = spec.fields.length === 0;
    return box;
  };

  const clauseRow = (clause, i) => {
    const key = `clause:${i}`;
    const n = i + 1;
    const field = el("input", { type: "text", class: "clause-field", id: `clause-${i}-field`, list: "type-fields", value: clause.field, "aria-label": `Field of test ${n}`, autocomplete: "off", placeholder: "properties.amount" });
    const formOperators = lang.operators.filter((o) => FORM_OPERANDS.has(o.operand));
    const op = options(el("select", { class: "clause-op", id: `clause-${i}-op`, "aria-label": `Operator of test ${n}` }),
      formOperators.map((o) => [o.name, `${o.name} (${o.meaning})`]), clause.op);
    const operand = lang.operators.find((o) => o.name === op.value).operand;
    const typeHint = el("span", { class: "hint clause-type", id: `clause-${i}-type` });
    const allowed = el("datalist", { id: `clause-${i}-values` });
    let value;
    if (operand === "boolean") {
      value = options(el("select", { class: "clause-value", id: `clause-${i}-value`, "aria-label": `Value of test ${n}` }), [["true", "true"], ["false", "false"]], clause.value === "false" ? "false" : "true");
      clause.value = value.value;
    } else {
      value = el("input", { type: "text", class: "clause-value", id: `clause-${i}-value`, value: clause.value, list: allowed.id,
        "aria-label": `Value of test ${n}`, "aria-describedby": typeHint.id, autocomplete: "off", placeholder: operand === "values" ? "a, b, c" : "value" });
    }
    // The field's JSON types and allowed values, from the chosen type's schema and events.
    const showType = () => {
      const info = typeFields().find((f) => f.path === field.value.trim());
      typeHint.textContent = info && info.types.length ? info.types.join(" | ") : "";
      clear(allowed).append(...((info && info.values) || []).map((v) => el("option", { value: literalText(v) })));
    };
    field.addEventListener("input", () => { clause.field = field.value; clause.valueType = undefined; showType(); changed(); });
    op.addEventListener("change", () => { clause.op = op.value; rebuild(); });
    value.addEventListener(value.tagName === "SELECT" ? "change" : "input", () => { clause.value = value.value; clause.valueType = undefined; changed(); });
    const remove = el("button", { type: "button", class: "secondary small", id: `clause-${i}-remove`, "aria-label": `Remove test ${n}`, text: "Remove",
      onclick: () => { model.clauses.splice(i, 1); rebuild(); } });
    const slot = el("div", { class: "field-error", id: `error-clause-${i}`, dataset: { key } });
    slots[key] = { slot, control: value };
    showType();
    const row = el("div", { class: "clause", dataset: { clause: i } },
      el("div", { class: "clause-inputs" }, field, typeHint, op, value, remove), allowed, slot);
    row.addEventListener("fields", showType);
    return row;
  };

  const chip = (text) => el("button", { type: "button", class: "chip", dataset: { placeholder: text }, text: `{{${text}}}`,
    "aria-label": `Insert {{${text}}}`,
    onclick: () => {
      const { input: target, set } = messageTarget;
      const start = target.selectionStart ?? target.value.length;
      const end = target.selectionEnd ?? target.value.length;
      target.value = `${target.value.slice(0, start)}{{${text}}}${target.value.slice(end)}`;
      target.selectionStart = target.selectionEnd = start + text.length + 4;
      target.focus();
      set(target.value);
      changed();
    } });

  /** One language's message: its tag, its text, and a way to drop it. */
  const translationRow = (t, i) => {
    const n = i + 1;
    const locale = el("input", { type: "text", class: "short translation-locale", id: `translation-${i}-locale`, value: t.locale, placeholder: "pt-BR", autocomplete: "off" });
    locale.addEventListener("input", () => { t.locale = locale.value; changed(); });
    const text = el("textarea", { class: "translation-text", id: `translation-${i}-text`, rows: 2, value: t.text });
    text.addEventListener("input", () => { t.text = text.value; changed(); });
    text.addEventListener("focus", () => { messageTarget = { input: text, set: (v) => { t.text = v; } }; });
    const slot = el("div", { class: "field-error", id: `error-translation-${i}`, dataset: { key: `translation:${i}` } });
    slots[`translation:${i}`] = { slot, control: text };
    return el("div", { class: "translation", dataset: { translation: String(i) } },
      el("div", { class: "row" },
        el("div", {}, el("label", { for: locale.id, text: `Language ${n}` }), locale),
        el("button", { type: "button", class: "secondary", "aria-label": `Remove language ${n}`, text: "Remove",
          onclick: () => { model.translations.splice(i, 1); rebuild(); document.getElementById("add-translation")?.focus(); } })),
      el("label", { for: text.id, text: `Message in language ${n}` }), text, slot);
  };

  /** The chosen action's own optional fields (an SMS's quiet hours and expiry). */
  const actionInputs = (action) => (action && action.fields ? action.fields : []).map((field) => {
    const key = `action.${field.name}`;
    const values = model.actionValues;
    const label = field.name.replace(/_seconds$/, "").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase()) + " (optional)";
    if (field.input === "choice") {
      const select = options(el("select", { id: `action-${field.name}` }),
        [["", `default (${field.default})`], ...field.choices.map((c) => [c, c])], values[field.name] || "");
      select.addEventListener("change", () => {
        if (select.value) values[field.name] = select.value;
        else delete values[field.name];
        changed();
      });
      return labelled(label, select, slots, key, field.meaning);
    }
    return durationInputs(key, label, field, values[field.name], (v) => {
      if (v) values[field.name] = v;
      else delete values[field.name];
    });
  });

  /** Rebuilds the form from the model, keeping the focus on the control that had it. */
  const rebuild = () => {
    const focused = document.activeElement ? document.activeElement.id : null;
    for (const key of Object.keys(slots)) delete slots[key];
    const idInput = el("input", { type: "text", class: "wide", id: "field-id", value: model.id, disabled: Boolean(record), placeholder: "big-payment", autocomplete: "off" });
    idInput.addEventListener("input", () => { model.id = idInput.value; changed(); });
    const description = el("input", { type: "text", class: "wide", id: "field-description", value: model.description });
    description.addEventListener("input", () => { model.description = description.value; changed(); });
    const enabled = el("input", { type: "checkbox", id: "field-enabled", checked: model.enabled });
    enabled.addEventListener("change", () => { model.enabled = enabled.checked; changed(); });

    const conditionChoice = el("fieldset", { class: "choice", id: "condition-type" }, el("legend", { text: "Fires on" }),
      lang.conditions.map((c) => {
        const radio = el("input", { type: "radio", name: "condition-type", id: `condition-${c.type}`, value: c.type, checked: model.condition.type === c.type });
        radio.addEventListener("change", () => {
          if (!radio.checked) return;
          model.condition = { type: c.type, values: {} };
          rebuild();
        });
        return el("label", { class: "inline", for: radio.id }, radio, el("span", {}, el("strong", { text: c.type }), ` — ${c.meaning}`));
      }));
    const conditionSlot = el("div", { class: "field-error", id: "error-condition", dataset: { key: "condition" } });
    slots.condition = { slot: conditionSlot, control: conditionChoice };

    const actionSelect = options(el("select", { id: "action-type" }), lang.actions.map((a) => [a.type, `${a.type} — ${a.meaning}`]), model.action);
    actionSelect.addEventListener("change", () => { model.action = actionSelect.value; model.actionValues = {}; rebuild(); });
    model.actionValues = model.actionValues || {};
    model.translations = model.translations || [];
    const action = lang.actions.find((a) => a.type === model.action);
    const severity = options(el("select", { id: "action-severity" }),
      [["", `default (${lang.default_severity})`], ...lang.severities.map((s) => [s, s])], model.severity);
    severity.addEventListener("change", () => { model.severity = severity.value; changed(); });

    const message = el("textarea", { id: "field-message", rows: 3, value: model.message });
    message.addEventListener("input", () => { model.message = message.value; changed(); });
    const toDefault = { input: message, set: (v) => { model.message = v; } };
    message.addEventListener("focus", () => { messageTarget = toDefault; });
    messageTarget = toDefault;
    const chars = el("input", { type: "number", id: "field-placeholder_chars", min: String(lang.limits.placeholder_chars.min),
      max: String(lang.limits.placeholder_chars.max), value: model.placeholderChars, placeholder: String(lang.limits.placeholder_chars.default), class: "short" });
    chars.addEventListener("input", () => { model.placeholderChars = chars.value; changed(); });

    const whenSlot = el("div", { class: "field-error", id: "error-when", dataset: { key: "when" } });
    const eventBox = eventTypeInputs(model.event, "when", "when", "Event", () => rebuild());
    slots.when = { slot: whenSlot, control: eventBox };

    clear(formBox).append(
      labelled("Id", idInput, slots, "id", record ? null : "Lower-case letters, digits, - and _; it cannot change later."),
      labelled("Description", description, slots, "description"),
      el("label", { class: "inline" }, enabled, "Enabled"),
      eventBox, whenSlot,
      el("fieldset", { id: "clauses" }, el("legend", { text: "Only when the event's fields pass every test" }),
        model.clauses.map((c, i) => clauseRow(c, i)),
        fieldList, numericList,
        el("button", { type: "button", class: "secondary", id: "add-clause", text: "Add a test on a field",
          onclick: () => { model.clauses.push({ field: "", op: "eq", value: "" }); rebuild(); formBox.querySelector(`.clause[data-clause="${model.clauses.length - 1}"] .clause-field`).focus(); } })),
      conditionChoice, conditionInputs(), conditionSlot,
      el("fieldset", {}, el("legend", { text: "Then" }),
        labelled("Action", actionSelect, slots, "action"),
        action && action.severity ? labelled("Severity", severity, slots, "action.severity") : null,
        actionInputs(action)),
      labelled(model.translations.length ? "Message (default: every other language)" : "Message", message, slots, "message"),
      el("fieldset", { id: "translations" }, el("legend", { text: "In the user's language (optional)" }),
        el("p", { class: "hint", text: "An SMS goes in the user's profile language where written here (pt-BR, then pt), else in the default above." }),
        model.translations.map((t, i) => translationRow(t, i)),
        el("button", { type: "button", class: "secondary", id: "add-translation", text: "Add a language",
          onclick: () => { model.translations.push({ locale: "", text: "" }); rebuild(); document.getElementById(`translation-${model.translations.length - 1}-locale`)?.focus(); } })),
      chipsBox,
      labelled("Characters each placeholder may show (optional)", chars, slots, "placeholder_chars",
        `Client-written values are cut to this many characters; default ${lang.limits.placeholder_chars.default}.`));
    if (focused) document.getElementById(focused)?.focus();
    refreshFields();
  };

  // ---- client-side problems, the JSON view, and save
  let clientErrors = {};
  const current = () => {
    if (mode === "json") {
      try {
        return { doc: JSON.parse(jsonText.value), errors: {} };
      } catch (e) {
        return { doc: null, errors: { json: `not valid JSON: ${e.message}` } };
      }
    }
    return formToRule(model, lang, typeFields());
  };
  check = () => {
    const { doc, errors } = current();
    clientErrors = errors;
    for (const { slot, control } of Object.values(slots)) {
      slot.textContent = "";
      control.classList.remove("invalid");
    }
    jsonError.textContent = "";
    general.textContent = "";
    for (const [key, message] of Object.entries(errors)) showProblem(key, message);
    save.disabled = Object.keys(errors).length > 0;
    save.title = save.disabled ? "Fix the problems marked in the form first." : "";
    if (mode === "form" && doc) previewJson.textContent = pretty(doc);
  };
  const showProblem = (key, message) => {
    if (mode === "json" || key === "json") {
      jsonError.textContent += (jsonError.textContent ? "\n" : "") + message;
      jsonText.classList.add("invalid");
      return;
    }
    const target = slots[key];
    if (!target) {
      general.textContent += (general.textContent ? "\n" : "") + message;
      return;
    }
    target.slot.textContent += (target.slot.textContent ? "\n" : "") + message;
    target.control.classList.add("invalid");
  };
  /** The control an API problem's JSON path points into (`$.condition.sum.at_least`). */
  const keyOfPath = (path) => {
    const p = String(path || "").replace(/^\$(\.rule)?\.?/, "");
    const field = p.match(/^when\["((?:[^"\\]|\\.)*)"\]/);
    if (field) {
      const name = JSON.parse(`"${field[1]}"`);
      const i = model.clauses.findIndex((c) => c.field.trim() === name);
      if (i >= 0) return `clause:${i}`;
      return slots[`when.${name}`] ? `when.${name}` : "when";
    }
    const language = p.match(/^message\.(.+)$/);
    if (language && language[1] !== "default") {
      const i = (model.translations || []).findIndex((t) => t.locale.trim() === language[1]);
      if (i >= 0) return `translation:${i}`;
    }
    const parts = p.split(/[.[]/);
    for (let n = parts.length; n > 0; n--) {
      const key = parts.slice(0, n).join(".");
      if (slots[key]) return key;
    }
    return null;
  };
  const showApiProblems = (body, status) => {
    const error = body && body.error;
    if (error && Array.isArray(error.problems) && error.problems.length) {
      for (const problem of error.problems) {
        const key = keyOfPath(problem.path);
        showProblem(key || "general", `${problem.path}: ${problem.message}`);
      }
    } else {
      general.textContent = errorText(body, status);
    }
  };

  const setMode = (next) => {
    if (next === mode) return;
    if (next === "json") {
      const { doc } = formToRule(model, lang, typeFields());
      jsonText.value = pretty(doc);
      jsonNote.textContent = "Edit the rule document directly. Every operator of the rule language works here.";
      mode = "json";
    } else {
      let doc;
      try {
        doc = JSON.parse(jsonText.value);
      } catch (e) {
        jsonError.textContent = `not valid JSON: ${e.message}`;
        return;
      }
      const read = formFor(doc, lang);
      if (read.reason) {
        jsonNote.textContent = `This rule stays in JSON: ${read.reason}.`;
        jsonText.focus();
        return;
      }
      model = read.model;
      mode = "form";
    }
    formMode.setAttribute("aria-pressed", String(mode === "form"));
    jsonMode.setAttribute("aria-pressed", String(mode === "json"));
    formBox.hidden = mode !== "form";
    jsonBox.hidden = mode !== "json";
    if (mode === "form") rebuild();
    else changed();
  };
  formMode.addEventListener("click", () => setMode("form"));
  jsonMode.addEventListener("click", () => setMode("json"));
  jsonText.addEventListener("input", changed);

  const submit = async () => {
    check();
    const { doc, errors } = current();
    if (Object.keys(errors).length || !doc) return;
    const target = record ? record.id : String(doc.id || "");
    if (!target) {
      showProblem("id", "give the rule an id");
      return;
    }
    save.disabled = true;
    const { status, body } = await api("PUT", `/rules/${encodeURIComponent(target)}`, { ...doc, version: record ? record.version : 0 });
    save.disabled = false;
    if (status === 200 || status === 201) {
      toast(`Saved ${body.id} (version ${body.version}). It takes effect within the rules cache time.`);
      location.hash = "#/rules";
    } else if (status === 409) {
      general.textContent = `${errorText(body, status)}\nOpen the rule again to see the current version.`;
    } else {
      showApiProblems(body, status);
    }
  };

  const remove = async () => {
    if (!confirm(`Delete rule ${record.id}? Its history is kept.`)) return;
    const { status, body } = await api("DELETE", `/rules/${encodeURIComponent(record.id)}?version=${record.version}`);
    if (status === 200) {
      toast(`Deleted ${record.id}.`);
      location.hash = "#/rules";
    } else {
      general.textContent = errorText(body, status);
    }
  };

  // ---- live previews: the last 7 days' backtest of the rule as edited, and its message
  let timer = null;
  let inFlight = null;
  const schedulePreview = () => {
    clearTimeout(timer);
    // A preview still in flight is of the rule before this edit: its answer (problems with
    // text no longer there) must not land on the edited form.
    if (inFlight) {
      inFlight.abort();
      inFlight = null;
    }
    // What is shown is of the rule before this edit: marked as such until the new count is in
    // (dimmed, and never read as the edited rule's).
    if (previewCount.dataset.state === "done") previewCount.dataset.state = "loading";
    // A preview cut short by a newer edit or by leaving the page is simply dropped.
    timer = setTimeout(() => runPreview().catch(() => {}), PREVIEW_DEBOUNCE_MS);
  };
  const runPreview = async () => {
    if (inFlight) inFlight.abort();
    const { doc, errors } = current();
    // A rule not yet named can be previewed: the id matters only to saving.
    if (!doc || Object.keys(errors).some((key) => key !== "id" || doc.id)) {
      previewCount.dataset.state = "blocked";
      previewCount.textContent = "Fix the problems marked in the form to see what the rule would have done.";
      return;
    }
    const controller = new AbortController();
    inFlight = controller;
    previewCount.dataset.state = "loading";
    const now = Date.now();
    const rule = { ...doc, id: doc.id || "draft" };
    const { status, body } = await api("POST", "/rules/backtest",
      { rule, from: now - PREVIEW_DAYS * 24 * 3600 * 1000, to: now }, { signal: controller.signal });
    if (controller.signal.aborted) return;
    inFlight = null;
    if (status !== 200) {
      previewCount.dataset.state = "error";
      previewCount.textContent = errorText(body, status);
      if (mode === "form" && body && body.error && body.error.problems) {
        check();
        showApiProblems(body, status);
      }
      return;
    }
    previewCount.dataset.state = "done";
    previewCount.dataset.alerts = String(body.alerts.length);
    // A window across users alerts about no one user.
    const whom = model.condition.type === "window" && acrossUsers()
      ? "across users" : `for ${body.users} user${body.users === 1 ? "" : "s"}`;
    previewCount.textContent = `In the last ${PREVIEW_DAYS} days this rule would have fired ${body.alerts.length} time${body.alerts.length === 1 ? "" : "s"} ${whom} (${body.events_replayed} events replayed).`;
    if (body.preview) {
      previewMessage.textContent = body.preview.text;
      clear(previewTranslations).append(...Object.entries(body.preview.translations || {}).map(([locale, text]) =>
        el("p", { class: "preview-text", dataset: { locale } }, el("strong", { text: `${locale}: ` }), text)));
      previewEvent.textContent = `Rendered against event ${body.preview.event_id} of user ${body.preview.user} at ${formatTime(body.preview.received_at)}` +
        (body.preview.fires ? ", on which the rule would have fired." : " (which would not have fired it).");
    } else {
      previewMessage.textContent = "";
      clear(previewTranslations);
      previewEvent.textContent = `No event matching the rule in the last ${PREVIEW_DAYS} days to render the message against.`;
    }
  };

  // ---- dry run, backtest of the saved version, history
  const dryUser = el("input", { type: "number", id: "dry-user", value: "1", min: "0" });
  const dryEvent = el("textarea", { id: "dry-event", rows: 8, spellcheck: "false", value: pretty(SAMPLE_EVENT) });
  const dryResult = el("div", { class: "result", id: "dry-result" });
  const dryRun = async () => {
    clear(dryResult);
    const { doc, errors } = current();
    if (!doc || Object.keys(errors).length) {
      dryResult.append(el("div", { class: "error-box", text: "Fix the problems marked in the rule first." }));
      return;
    }
    let event;
    try {
      event = JSON.parse(dryEvent.value);
    } catch (e) {
      dryResult.append(el("div", { class: "error-box", text: `The event is not valid JSON: ${e.message}` }));
      return;
    }
    const isFeedback = event && typeof event === "object" && "rating" in event && !("noun" in event);
    const { status, body } = await api("POST", "/rules/test",
      { rule: { ...doc, id: doc.id || "draft" }, user: Number(dryUser.value), [isFeedback ? "feedback" : "event"]: event });
    if (status !== 200) {
      if (body && body.error && body.error.problems) showApiProblems(body, status);
      else dryResult.append(el("div", { class: "error-box", text: errorText(body, status) }));
      return;
    }
    // appendAll, not append: the DOM's append prints a missing part as the text "null".
    appendAll(dryResult, [
      el("p", {}, el("span", { class: `status ${body.outcome}`, id: "dry-outcome", text: body.outcome.replace(/_/g, " ") }), " ", body.explanation),
      el("p", {}, "Pattern matches: ", el("strong", { text: body.matches ? "yes" : "no" })),
      el("p", {}, "Message: ", el("span", { class: "mono", id: "dry-message", text: body.message })),
      ...Object.entries(body.translations || {}).map(([locale, text]) =>
        el("p", { class: "dry-translation", dataset: { locale } }, `In ${locale}: `, el("span", { class: "mono", text }))),
      body.window ? el("p", { text: `Window: ${body.window.count} event(s), sum ${body.window.sum}, ${body.window.distinct} different value(s)` }) : null]);
  };
  const panels = [el("div", { class: "card" },
    el("h2", { text: "Dry run" }),
    el("p", { class: "hint", text: "Runs the rule above (as edited, saved or not) against an event for a user, reading that user's real state. Nothing is stored or sent." }),
    el("label", { for: "dry-user", text: "User" }), dryUser,
    el("label", { for: "dry-event", text: "Event (the body the app would post)" }), dryEvent,
    el("div", { class: "row" }, el("button", { type: "button", id: "dry-run", onclick: dryRun, text: "Dry run" })),
    dryResult)];
  if (record) panels.push(ruleHealth(record), savedBacktest(record), ruleHistory(record));
  main.append(el("div", { class: "two" }, panels));

  // ---- start
  formBox.hidden = mode !== "form";
  jsonBox.hidden = mode !== "json";
  formMode.setAttribute("aria-pressed", String(mode === "form"));
  jsonMode.setAttribute("aria-pressed", String(mode === "json"));
  if (mode === "form") {
    rebuild();
  } else {
    jsonText.value = pretty(startDoc);
    jsonNote.textContent = `This rule opens in JSON: ${opened.reason}.`;
    // Switching to the form starts from a blank form of the same id.
    model = ruleToForm({ ...NEW_RULE_DOC, id: startDoc.id || "" }, lang).model;
    changed();
  }
  leaveView = () => {
    clearTimeout(timer);
    if (inFlight) inFlight.abort();
  };
  keepUnsavedWork(form, () => (mode === "json" ? jsonText.value : pretty(formToRule(model, lang, typeFields()).doc)), (text) => {
    // Restored into the JSON editor, then into the form when the form can hold it.
    if (mode === "form") setMode("json");
    jsonText.value = text;
    setMode("form");
    changed();
  });
}

/**
 * Keeps the editor's unsaved work when the session ends under it (the token expired: the API
 * answered 401), and offers it back when the operator signs in again and lands here.
 */
function keepUnsavedWork(form, text, restore) {
  const hash = location.hash;
  // The editor as it opened: only a change from it is worth keeping.
  const saved = text();
  keepDraft = () => {
    const now = text();
    if (now && now !== saved) {
      sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ hash, text: now, kept_at: Date.now() }));
    }
  };
  const draft = keptDraft(hash);
  if (!draft) return;
  const banner = el("div", { class: "warning", id: "draft-kept", role: "status" },
    `Your unsaved changes here were kept when your session ended (${formatTime(draft.kept_at)}). `,
    el("button", { type: "button", id: "restore-draft", text: "Restore them", onclick: () => {
      sessionStorage.removeItem(DRAFT_KEY);
      banner.remove();
      restore(draft.text);
    } }), " ",
    el("button", { type: "button", class: "secondary", id: "discard-draft", text: "Discard", onclick: () => {
      sessionStorage.removeItem(DRAFT_KEY);
      banner.remove();
    } }));
  form.closest(".builder").before(banner);
}
