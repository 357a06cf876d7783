// Cuba admin UI: the rule form's model and its round trip to the rule document. A rule is built
// in a form generated from the rule language the server describes (GET /admin/api/rule-language:
// operators, conditions and their fields, actions, limits) and the event types it knows (GET
// /admin/api/event-types: types seen in the last 7 days or named by the schema registry, with
// their fields and a sample event). The JSON is the advanced mode: a rule the form cannot
// express exactly opens there.
//
// The form is a pure translation: `ruleToForm` reads a rule document into a plain model (or
// says why it cannot), `formToRule` writes the model back with the problems it can see before
// the server does. A rule opens in the form only when writing back gives the same document.
// Pure: no page, no API. builder.js, the editor, builds the form on it.
"use strict";

/** What a new rule starts from, and the event its dry run starts with. */
const NEW_RULE_DOC = {
  id: "",
  when: { kind: "activity", noun: "bill", verb: "paid" },
  condition: { type: "first" },
  action: { type: "notify_operator", severity: "warning" },
  message: "user {{user}} paid {{properties.amount}}",
};

const SAMPLE_EVENT = {
  noun: "bill", verb: "paid", ts: Math.floor(Date.now() / 1000),
  properties: { amount: 25000, type: "electricity" },
};

/** Operand kinds the form has an input for; other operators stay in the JSON mode. */
const FORM_OPERANDS = new Set(["value", "values", "number", "boolean"]);
const UNITS = [["hours", 3600], ["minutes", 60], ["seconds", 1]];
/** What a BCP 47 tag looks like, for the form's own check; the server reads it exactly. */
const LANGUAGE_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
const PREVIEW_DAYS = 7;
const PREVIEW_DEBOUNCE_MS = 400;

// ---- the translation -------------------------------------------------------------------------

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isLiteral(v) {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

/** Deep equality of JSON values, ignoring the order of object keys. */
function sameJson(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return a === b;
}

/** A whole number of seconds as the largest unit that divides it: 900 → 15 minutes. */
function splitSeconds(seconds) {
  for (const [unit, size] of UNITS) {
    if (seconds % size === 0) return { n: String(seconds / size), unit };
  }
  return { n: String(seconds), unit: "seconds" };
}

function literalText(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function literalType(v) {
  return typeof v === "number" ? "number" : typeof v;
}

/** An event type pattern with only literal type fields: `{kind, noun, verb}`. */
function readEventType(pattern, lang, what) {
  if (!isObject(pattern)) return { reason: `${what} is not an object` };
  const kind = lang.event_kinds.find((k) => k.kind === pattern.kind);
  if (!kind) return { reason: `${what} does not name a kind the form offers (${lang.event_kinds.map((k) => k.kind).join(", ")})` };
  const names = {};
  for (const field of kind.type_fields) {
    const v = pattern[field];
    if (v === undefined) continue;
    if (isObject(v)) return { reason: `${what}.${field} uses ${Object.keys(v).join(", ")}, which the type picker does not offer` };
    if (typeof v !== "string") return { reason: `${what}.${field} is not a plain name` };
    names[field] = v;
  }
  return { kind: kind.kind, names };
}

function writeEventType(type, lang) {
  const kind = lang.event_kinds.find((k) => k.kind === type.kind);
  const out = { kind: type.kind };
  for (const field of kind ? kind.type_fields : []) {
    const v = (type.names[field] || "").trim();
    if (v) out[field] = v;
  }
  return out;
}

/** The rule document as the form's model, or `{reason}` when the form cannot hold it exactly. */
function ruleToForm(doc, lang) {
  if (!isObject(doc)) return { reason: "the rule is not a JSON object" };
  const known = new Set(["id", "description", "enabled", "when", "condition", "action", "message", "placeholder_chars"]);
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) return { reason: `the field "${key}" is not part of the form` };
  }
  const type = readEventType(doc.when, lang, "when");
  if (type.reason) return type;
  const kind = lang.event_kinds.find((k) => k.kind === type.kind);
  const clauses = [];
  for (const [field, spec] of Object.entries(doc.when)) {
    if (field === "kind" || kind.type_fields.includes(field)) continue;
    if (field === "$or") return { reason: "it uses $or (alternatives), which the form does not offer" };
    if (isLiteral(spec)) {
      clauses.push({ field, op: "eq", value: literalText(spec), valueType: literalType(spec) });
      continue;
    }
    if (!isObject(spec)) return { reason: `the test on "${field}" is not one the form offers` };
    for (const [op, operand] of Object.entries(spec)) {
      const operator = lang.operators.find((o) => o.name === op);
      if (!operator || !FORM_OPERANDS.has(operator.operand)) {
        return { reason: `it uses the operator "${op}", which the form does not offer` };
      }
      if (operator.operand === "values") {
        if (!Array.isArray(operand) || !operand.every(isLiteral) || operand.length === 0) return { reason: `"${op}" on "${field}" is not a list of values` };
        const types = new Set(operand.map(literalType));
        if (types.size > 1 || operand.some((v) => typeof v === "string" && v.includes(","))) {
          return { reason: `the list for "${field}" mixes types or holds commas` };
        }
        clauses.push({ field, op, value: operand.map(literalText).join(", "), valueType: [...types][0] });
      } else {
        if (!isLiteral(operand)) return { reason: `"${op}" on "${field}" does not take a plain value` };
        clauses.push({ field, op, value: literalText(operand), valueType: literalType(operand) });
      }
    }
  }
  const c = doc.condition;
  if (!isObject(c)) return { reason: "the condition is not an object" };
  const spec = lang.conditions.find((s) => s.type === c.type);
  if (!spec) return { reason: `the condition type "${c.type}" is not one the form offers` };
  const condition = { type: c.type, values: {} };
  for (const key of Object.keys(c)) {
    if (key !== "type" && !spec.fields.some((f) => f.name === key)) return { reason: `the condition field "${key}" is not part of the form` };
  }
  for (const field of spec.fields) {
    const v = c[field.name];
    if (v === undefined) continue;
    switch (field.input) {
      case "seconds":
        if (!Number.isInteger(v) || v < 0) return { reason: `${field.name} is not a whole number of seconds` };
        condition.values[field.name] = splitSeconds(v);
        break;
      case "count":
        if (!Number.isInteger(v)) return { reason: `${field.name} is not a whole number` };
        condition.values[field.name] = String(v);
        break;
      case "sum":
      case "distinct":
        if (!isObject(v) || typeof v.field !== "string" || typeof v.at_least !== "number" || Object.keys(v).length !== 2) {
          return { reason: `${field.name} is not {"field", "at_least"}` };
        }
        condition.values[field.name] = { field: v.field, at_least: String(v.at_least) };
        break;
      case "group_by":
        if (typeof v !== "string") return { reason: `${field.name} is not text` };
        condition.values[field.name] = v;
        break;
      case "pattern": {
        const expect = readEventType(v, lang, field.name);
        if (expect.reason) return expect;
        const expectKind = lang.event_kinds.find((k) => k.kind === expect.kind);
        if (Object.keys(v).some((k) => k !== "kind" && !expectKind.type_fields.includes(k))) {
          return { reason: `${field.name} tests more than the event type, which the form does not offer` };
        }
        condition.values[field.name] = expect;
        break;
      }
      default:
        return { reason: `the form has no input for ${field.name}` };
    }
  }
  const a = doc.action;
  if (!isObject(a)) return { reason: "the action is not an object" };
  const action = lang.actions.find((x) => x.type === a.type);
  if (!action) return { reason: `the action "${a.type}" is not one the form offers` };
  if (a.severity !== undefined && (!action.severity || !lang.severities.includes(a.severity))) {
    return { reason: "the action's severity is not one the form offers" };
  }
  const actionFields = action.fields || [];
  const actionValues = {};
  for (const key of Object.keys(a)) {
    if (key !== "type" && key !== "severity" && !actionFields.some((f) => f.name === key)) return { reason: `the action field "${key}" is not part of the form` };
  }
  for (const field of actionFields) {
    const v = a[field.name];
    if (v === undefined) continue;
    if (field.input === "choice") {
      if (!field.choices.includes(v)) return { reason: `${field.name} is not one of ${field.choices.join(", ")}` };
      actionValues[field.name] = v;
    } else if (field.input === "seconds") {
      if (!Number.isInteger(v) || v < 0) return { reason: `${field.name} is not a whole number of seconds` };
      actionValues[field.name] = splitSeconds(v);
    } else {
      return { reason: `the form has no input for ${field.name}` };
    }
  }
  // One text, or one per language with a `default` for the rest.
  let message = doc.message;
  const translations = [];
  if (isObject(doc.message)) {
    if (typeof doc.message.default !== "string") return { reason: "the message per language has no default text" };
    for (const [locale, text] of Object.entries(doc.message)) {
      if (locale === "default") continue;
      if (typeof text !== "string") return { reason: `the ${locale} message is not text` };
      translations.push({ locale, text });
    }
    message = doc.message.default;
  }
  if (doc.enabled !== undefined && typeof doc.enabled !== "boolean") return { reason: "enabled is not true or false" };
  if (doc.placeholder_chars !== undefined && !Number.isInteger(doc.placeholder_chars)) return { reason: "placeholder_chars is not a whole number" };
  for (const key of ["id", "description"]) {
    if (doc[key] !== undefined && typeof doc[key] !== "string") return { reason: `${key} is not text` };
  }
  if (message !== undefined && typeof message !== "string") return { reason: "message is not text" };
  return {
    model: {
      id: doc.id || "",
      description: doc.description || "",
      enabled: doc.enabled !== false,
      event: type,
      clauses,
      condition,
      action: a.type,
      severity: a.severity || "",
      actionValues,
      message: message || "",
      translations,
      placeholderChars: doc.placeholder_chars === undefined ? "" : String(doc.placeholder_chars),
    },
  };
}

/** What the catalogue knows of a field of the chosen type: its JSON types, or none. */
function fieldTypes(fields, path) {
  const info = fields.find((f) => f.path === path);
  return info ? info.types : [];
}

/** Reads a typed value: by the clause's own type, else the field's, else what it looks like. */
function typedValue(raw, valueType, types) {
  const text = raw.trim();
  const numeric = types.length && types.every((t) => t === "number" || t === "integer");
  const boolean = types.length && types.every((t) => t === "boolean");
  const want = valueType || (numeric ? "number" : boolean ? "boolean" : types.includes("string") ? "string" : null);
  if (want === "number" || (!want && text !== "" && Number.isFinite(Number(text)))) {
    const n = Number(text);
    if (text === "" || !Number.isFinite(n)) return { error: "needs a number" };
    if (types.length && !types.some((t) => t === "number" || t === "integer")) return { error: `the field holds ${types.join(" or ")}, not a number` };
    return { value: n };
  }
  if (want === "boolean" || (!want && (text === "true" || text === "false"))) {
    if (text !== "true" && text !== "false") return { error: "needs true or false" };
    return { value: text === "true" };
  }
  if (types.length && !types.includes("string")) return { error: `the field holds ${types.join(" or ")}, not text` };
  if (raw === "") return { error: "needs a value" };
  return { value: raw };
}

function readSeconds(entry, field) {
  const n = Number(entry.n);
  const size = (UNITS.find(([u]) => u === entry.unit) || UNITS[2])[1];
  if (entry.n.trim() === "" || !Number.isInteger(n)) return { error: "needs a whole number" };
  const seconds = n * size;
  if (field.min !== undefined && seconds < field.min) return { error: `at least ${field.min} s` };
  if (field.max !== undefined && seconds > field.max) return { error: `at most ${describeSeconds(field.max)}` };
  return { value: seconds };
}

function describeSeconds(seconds) {
  const { n, unit } = splitSeconds(seconds);
  return `${n} ${n === "1" ? unit.replace(/s$/, "") : unit}`;
}

/**
 * The model as a rule document, and the problems the form can see: `errors` maps a control key
 * (`id`, `clause:2`, `condition.seconds`, ...) to a message.
 */
function formToRule(model, lang, fields) {
  const errors = {};
  const doc = { id: model.id.trim() };
  if (!doc.id) errors.id = "give the rule an id";
  else if (doc.id.length > lang.limits.id_max_chars) errors.id = `at most ${lang.limits.id_max_chars} characters`;
  if (model.description.trim()) doc.description = model.description.trim();
  if (!model.enabled) doc.enabled = false;
  const when = writeEventType(model.event, lang);
  const groups = new Map();
  model.clauses.forEach((clause, i) => {
    const key = `clause:${i}`;
    const field = clause.field.trim();
    const operator = lang.operators.find((o) => o.name === clause.op);
    if (!field) {
      errors[key] = "choose a field";
      return;
    }
    if (field === "kind" || field === "$or" || Object.hasOwn(when, field)) {
      errors[key] = `${field} is set by the event type above`;
      return;
    }
    const types = fieldTypes(fields, field);
    let operand;
    if (operator.operand === "number") {
      const n = Number(clause.value.trim());
      if (clause.value.trim() === "" || !Number.isFinite(n)) errors[key] = `${clause.op} needs a number`;
      else if (types.length && !types.some((t) => t === "number" || t === "integer")) errors[key] = `${field} holds ${types.join(" or ")}, not numbers`;
      operand = n;
    } else if (operator.operand === "boolean") {
      operand = clause.value !== "false";
    } else if (operator.operand === "values") {
      const parts = clause.value.split(",").map((p) => p.trim()).filter((p) => p !== "");
      if (!parts.length) errors[key] = "list at least one value, separated by commas";
      operand = parts.map((p) => {
        const typed = typedValue(p, clause.valueType, types);
        if (typed.error) errors[key] = `${p}: ${typed.error}`;
        return typed.error ? p : typed.value;
      });
    } else {
      const typed = typedValue(clause.value, clause.valueType, types);
      if (typed.error) errors[key] = typed.error;
      operand = typed.error ? clause.value : typed.value;
    }
    const group = groups.get(field) || {};
    if (Object.hasOwn(group, clause.op)) errors[key] = `${field} already has a "${clause.op}" test`;
    group[clause.op] = operand;
    groups.set(field, group);
  });
  for (const [field, ops] of groups) {
    const names = Object.keys(ops);
    when[field] = names.length === 1 && names[0] === "eq" ? ops.eq : ops;
  }
  doc.when = when;
  const spec = lang.conditions.find((s) => s.type === model.condition.type);
  const condition = { type: model.condition.type };
  for (const field of spec.fields) {
    const v = model.condition.values[field.name];
    const key = `condition.${field.name}`;
    switch (field.input) {
      case "seconds": {
        if (!v || v.n.trim() === "") {
          if (field.required) errors[key] = "required";
          break;
        }
        const read = readSeconds(v, field);
        if (read.error) errors[key] = read.error;
        else condition[field.name] = read.value;
        break;
      }
      case "count": {
        if (!v || v.trim() === "") break;
        const n = Number(v);
        if (!Number.isInteger(n) || n < (field.min ?? 1)) errors[key] = `a whole number of at least ${field.min ?? 1}`;
        else condition[field.name] = n;
        break;
      }
      case "sum": {
        if (!v || (v.field.trim() === "" && v.at_least.trim() === "")) break;
        const at = Number(v.at_least);
        if (!v.field.trim()) errors[key] = "choose the field to add up";
        else if (v.at_least.trim() === "" || !Number.isFinite(at)) errors[key] = "the threshold needs a number";
        else {
          const types = fieldTypes(fields, v.field.trim());
          if (types.length && !types.some((t) => t === "number" || t === "integer")) errors[key] = `${v.field.trim()} holds ${types.join(" or ")}, not numbers`;
          condition[field.name] = { field: v.field.trim(), at_least: at };
        }
        break;
      }
      case "distinct": {
        if (!v || (v.field.trim() === "" && v.at_least.trim() === "")) break;
        const at = Number(v.at_least);
        const least = field.min ?? 2;
        if (!v.field.trim()) errors[key] = "choose the field whose values to count";
        else if (!Number.isInteger(at) || at < least) errors[key] = `a whole number of at least ${least}`;
        else condition[field.name] = { field: v.field.trim(), at_least: at };
        break;
      }
      case "group_by": {
        // Written only when it is not the default, so a rule per user reads as it always did.
        const g = (v || "").trim();
        if (g === "" || g === "user") break;
        if (g !== "all" && !/^[^.\s]+(\.[^.\s]+)*$/.test(g)) errors[key] = "user, all, or a field path such as properties.merchant";
        else condition[field.name] = g;
        break;
      }
      case "pattern":
        if (v) condition[field.name] = writeEventType(v, lang);
        else if (field.required) errors[key] = "required";
        break;
      default:
        break;
    }
  }
  if (spec.needs_one_of && spec.needs_one_of.length && !spec.needs_one_of.some((name) => Object.hasOwn(condition, name))) {
    errors[`condition.${spec.needs_one_of[0]}`] = errors[`condition.${spec.needs_one_of[0]}`] ||
      `give ${spec.needs_one_of.join(" or ")} (or both)`;
  }
  doc.condition = condition;
  const action = lang.actions.find((x) => x.type === model.action);
  doc.action = { type: model.action };
  if (action && action.severity && model.severity) doc.action.severity = model.severity;
  // Written only when set: a rule that takes the defaults reads as it did before they existed.
  for (const field of (action && action.fields) || []) {
    const v = (model.actionValues || {})[field.name];
    const key = `action.${field.name}`;
    if (field.input === "choice" && v) doc.action[field.name] = v;
    if (field.input === "seconds" && v && v.n.trim() !== "") {
      const read = readSeconds(v, field);
      if (read.error) errors[key] = read.error;
      else doc.action[field.name] = read.value;
    }
  }
  const tooLong = (text) => [...text].length > lang.limits.message_max_chars;
  if (!model.message.trim()) errors.message = "write the message";
  else if (tooLong(model.message)) errors.message = `at most ${lang.limits.message_max_chars} characters`;
  const translations = model.translations || [];
  if (translations.length === 0) {
    doc.message = model.message;
  } else {
    doc.message = { default: model.message };
    const seen = new Set();
    translations.forEach((t, i) => {
      const key = `translation:${i}`;
      const locale = t.locale.trim();
      if (!locale) errors[key] = "write the language tag (for example pt-BR)";
      else if (locale.toLowerCase() === "default" || !LANGUAGE_TAG.test(locale)) errors[key] = `"${locale}" is not a language tag (for example pt-BR, es or zh-Hant-TW)`;
      else if (seen.has(locale.toLowerCase())) errors[key] = `${locale} is written twice`;
      else if (!t.text.trim()) errors[key] = "write the message in this language";
      else if (tooLong(t.text)) errors[key] = `at most ${lang.limits.message_max_chars} characters`;
      seen.add(locale.toLowerCase());
      doc.message[locale] = t.text;
    });
  }
  if (model.placeholderChars.trim() !== "") {
    const n = Number(model.placeholderChars);
    const bounds = lang.limits.placeholder_chars;
    if (!Number.isInteger(n) || n < bounds.min || n > bounds.max) errors.placeholder_chars = `a whole number from ${bounds.min} to ${bounds.max}`;
    doc.placeholder_chars = n;
  }
  return { doc, errors };
}

/** Whether the form holds `doc` exactly: reading and writing it back changes nothing. */
function formFor(doc, lang) {
  const read = ruleToForm(doc, lang);
  if (read.reason) return read;
  const written = formToRule(read.model, lang, []).doc;
  const normal = { ...doc };
  if (normal.enabled === true) delete normal.enabled;
  if (!sameJson(written, normal)) return { reason: "the form would write it differently (for example an equality written as {\"eq\": …}); edit it as JSON" };
  return read;
}
