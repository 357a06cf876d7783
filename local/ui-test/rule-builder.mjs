// Drives the rule builder in Debian's headless Chromium against a local stack that starts with
// no rules and a few days' worth of bill payments (see local/tests/integration/ui.rs).
//
//   CUBA_UI_BASE, CUBA_UI_ADMIN_TOKEN, CUBA_UI_ARTIFACTS, CUBA_TEST_CHROMIUM  as admin-ui.mjs
//   CUBA_UI_DEFAULT_RULES  rules/default.json: the documents the forms must reproduce
//   CUBA_UI_BURST_USERS    how many users made the bill-payment bursts the previews count
// Exits non-zero (with the failed step) when anything is off.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { env, launch, signIn } from "./browser.mjs";
const base = env("CUBA_UI_BASE");
const adminToken = env("CUBA_UI_ADMIN_TOKEN");
const artifacts = env("CUBA_UI_ARTIFACTS");
const seeds = JSON.parse(readFileSync(env("CUBA_UI_DEFAULT_RULES"), "utf8")).rules;
const burstUsers = Number(env("CUBA_UI_BURST_USERS"));
mkdirSync(artifacts, { recursive: true });

let step = "start";
const log = (message) => {
  step = message;
  console.log(`[rule-builder] ${message}`);
};

async function adminApi(method, path, body) {
  const response = await fetch(base + "/admin/api" + path, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function storedRule(id) {
  const { status, body } = await adminApi("GET", `/rules/${id}`);
  assert.equal(status, 200, `GET /rules/${id}`);
  return body;
}

/** Seconds as the form shows them: [number, unit]. */
function duration(seconds) {
  if (seconds % 3600 === 0) return [String(seconds / 3600), "hours"];
  if (seconds % 60 === 0) return [String(seconds / 60), "minutes"];
  return [String(seconds), "seconds"];
}

async function setDuration(page, id, seconds) {
  const [n, unit] = duration(seconds);
  await page.fill(`#${id}`, n);
  await page.selectOption(`#${id}-unit`, unit);
}

/** Builds `rule` (a rule document without operators in `when`) in the form, field by field. */
async function buildInForm(page, rule) {
  await page.goto(`${base}/admin/#/rules/new`);
  await page.waitForSelector("#rule-builder #field-id");
  await page.fill("#field-id", rule.id);
  await page.fill("#field-description", rule.description || "");
  await page.selectOption("#when-kind", rule.when.kind);
  for (const field of ["noun", "verb", "category", "name"]) {
    if (rule.when[field] !== undefined) await page.fill(`#when-${field}`, rule.when[field]);
  }
  const c = rule.condition;
  await page.check(`#condition-${c.type}`);
  if (c.type === "window") {
    await setDuration(page, "cond-seconds", c.seconds);
    if (c.count_at_least !== undefined) await page.fill("#cond-count_at_least", String(c.count_at_least));
    if (c.sum) {
      await page.fill("#cond-sum-field", c.sum.field);
      await page.fill("#cond-sum-at_least", String(c.sum.at_least));
    }
    if (c.distinct) {
      await page.fill("#cond-distinct-field", c.distinct.field);
      await page.fill("#cond-distinct-at_least", String(c.distinct.at_least));
    }
    if (c.cooldown_seconds !== undefined) await setDuration(page, "cond-cooldown_seconds", c.cooldown_seconds);
  } else if (c.type === "absence") {
    await setDuration(page, "cond-seconds", c.seconds);
    await page.selectOption("#cond-expect-kind", c.expect.kind);
  }
  await page.selectOption("#action-type", rule.action.type);
  if (rule.action.severity) await page.selectOption("#action-severity", rule.action.severity);
  for (const field of ["group_wait_seconds", "group_interval_seconds"]) {
    if (rule.action[field] !== undefined) await setDuration(page, `cond-${field}`, rule.action[field]);
  }
  await page.fill("#field-message", rule.message);
}

async function saveAndWait(page, id) {
  await page.click("#save-rule");
  await page.waitForSelector(`#rules-table tr[data-rule="${id}"]`);
}

/** Waits until the live preview has counted `alerts` alerts (and returns the sentence). */
async function previewCount(page, alerts) {
  await page.waitForFunction((n) => {
    const p = document.querySelector("#preview-count");
    return p && p.dataset.state === "done" && p.dataset.alerts === String(n);
  }, alerts, { timeout: 15000 }).catch(async (e) => {
    throw new Error(`the preview did not count ${alerts} alerts; it says: ${await page.textContent("#preview-count")} (${e.message})`);
  });
  return page.textContent("#preview-count");
}

const browser = await launch();
const pageErrors = [];
const foreign = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("request", (request) => {
    if (!request.url().startsWith(base)) foreign.push(request.url());
  });

  log("sign in; the stack starts with no rules");
  await signIn(page, base, adminToken);
  assert.equal((await adminApi("GET", "/rules")).body.rules.length, 0);

  for (const seed of seeds) {
    log(`build the seed rule ${seed.id} from the form alone`);
    await buildInForm(page, seed);
    assert.equal(await page.isDisabled("#save-rule"), false, await page.textContent("#rule-form"));
    await saveAndWait(page, seed.id);
    const stored = await storedRule(seed.id);
    assert.deepStrictEqual(stored.rule, seed, `${seed.id} as stored`);
  }
  const seedIds = (await adminApi("GET", "/rules")).body.rules.map((r) => r.id).sort();
  assert.deepStrictEqual(seedIds, seeds.map((s) => s.id).sort());

  log("a saved seed rule opens in the form, not the JSON");
  await page.goto(`${base}/admin/#/rules/bill-payment-burst`);
  await page.waitForSelector("#rule-builder #cond-count_at_least");
  assert.equal(await page.isVisible("#rule-json"), false);
  assert.equal(await page.inputValue("#cond-seconds"), "5");
  assert.equal(await page.inputValue("#cond-seconds-unit"), "minutes");
  assert.equal(await page.inputValue("#cond-sum-at_least"), "20000");

  log("a new window rule: the 7-day count follows the threshold, the message renders");
  await page.goto(`${base}/admin/#/rules/new`);
  await page.waitForSelector("#rule-builder #field-id");
  await page.fill("#field-id", "ui-two-payments");
  await page.selectOption("#when-kind", "activity");
  await page.fill("#when-noun", "bill");
  await page.fill("#when-verb", "paid");
  await page.check("#condition-window");
  await setDuration(page, "cond-seconds", 600);
  await page.fill("#cond-count_at_least", "2");
  await page.selectOption("#action-type", "notify_operator");
  await page.selectOption("#action-severity", "info");
  await page.fill("#field-message", "user {{user}}: ");
  await page.click('button.chip[data-placeholder="window.count"]');
  await page.type("#field-message", " payments totalling ");
  await page.click('button.chip[data-placeholder="window.sum"]');
  await page.type("#field-message", ", the last for ");
  await page.click('button.chip[data-placeholder="properties.type"]');
  assert.equal(await page.inputValue("#field-message"),
    "user {{user}}: {{window.count}} payments totalling {{window.sum}}, the last for {{properties.type}}");
  const fired = await previewCount(page, burstUsers);
  assert.match(fired, new RegExp(`fired ${burstUsers} times for ${burstUsers} users`));
  const message = await page.textContent("#preview-message");
  assert.match(message, /^user \d+: \d+ payments totalling \d+, the last for electricity$/, message);
  assert.match(await page.textContent("#preview-event"), /on which the rule would have fired/);
  await page.fill("#cond-count_at_least", "50");
  assert.match(await previewCount(page, 0), /fired 0 times for 0 users/);
  assert.match(await page.textContent("#preview-event"), /which would not have fired it/);
  await page.fill("#cond-count_at_least", "2");
  await previewCount(page, burstUsers);

  log("a test on a field: values are checked against the field's type, save waits for a fix");
  await page.click("#add-clause");
  await page.fill("#clause-0-field", "properties.amount");
  assert.equal(await page.textContent("#clause-0-type"), "number");
  await page.selectOption("#clause-0-op", "gte");
  await page.fill("#clause-0-value", "a lot");
  await page.waitForSelector("#error-clause-0:not(:empty)");
  assert.match(await page.textContent("#error-clause-0"), /needs a number/);
  assert.equal(await page.isDisabled("#save-rule"), true);
  await page.fill("#clause-0-value", "5000");
  assert.equal(await page.textContent("#error-clause-0"), "");
  assert.equal(await page.isDisabled("#save-rule"), false);
  await previewCount(page, burstUsers);

  log("a problem only the server sees is shown under its input");
  const goodMessage = await page.inputValue("#field-message");
  await page.fill("#field-message", "total {{window.sum");
  await page.click("#save-rule");
  await page.waitForSelector("#error-message:not(:empty)");
  assert.match(await page.textContent("#error-message"), /\$\.message: .*never closed/);
  await page.fill("#field-message", goodMessage);
  await page.screenshot({ path: join(artifacts, "rule-builder.png"), fullPage: true });

  log("the labels name every control, and the condition is chosen with the keyboard");
  const unnamed = await page.evaluate(() => [...document.querySelectorAll("#rule-form input, #rule-form select, #rule-form textarea, #rule-form button")]
    .filter((c) => c.offsetParent !== null)
    .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !(c.tagName === "BUTTON" && c.textContent.trim()))
    .map((c) => c.id || c.outerHTML.slice(0, 80)));
  assert.deepStrictEqual(unnamed, []);
  await page.focus("#condition-window");
  await page.keyboard.press("ArrowUp");
  assert.equal(await page.isChecked("#condition-first"), true);
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.isChecked("#condition-window"), true);
  await page.fill("#cond-seconds", "10");
  await page.fill("#cond-count_at_least", "2");
  await previewCount(page, burstUsers);

  log("an operator rule groups its alerts: a wait and an interval, in the action's own fields");
  await page.fill("#cond-group_wait_seconds", "1");
  await page.fill("#cond-group_interval_seconds", "10");
  assert.match(await page.textContent("#rule-form"), /Group interval \(optional\)/);

  log("the form's JSON round-trips through the advanced mode; save");
  await page.click("#mode-json");
  const asJson = JSON.parse(await page.inputValue("#rule-json"));
  assert.deepStrictEqual(asJson.when, { kind: "activity", noun: "bill", verb: "paid", "properties.amount": { gte: 5000 } });
  await page.click("#mode-form");
  assert.equal(await page.inputValue("#clause-0-value"), "5000");
  await saveAndWait(page, "ui-two-payments");
  const built = (await storedRule("ui-two-payments")).rule;
  assert.deepStrictEqual(built, {
    id: "ui-two-payments",
    when: { kind: "activity", noun: "bill", verb: "paid", "properties.amount": { gte: 5000 } },
    condition: { type: "window", seconds: 600, count_at_least: 2 },
    action: { type: "notify_operator", severity: "info", group_wait_seconds: 60, group_interval_seconds: 600 },
    message: "user {{user}}: {{window.count}} payments totalling {{window.sum}}, the last for {{properties.type}}",
  });

  log("a card-testing rule: different merchants in a window, from the form alone");
  const cardTesting = {
    id: "ui-card-testing",
    when: { kind: "activity", noun: "bill", verb: "paid" },
    condition: { type: "window", seconds: 600, distinct: { field: "properties.merchant", at_least: 5 } },
    action: { type: "notify_operator", severity: "critical" },
    message: "user {{user}} paid {{window.distinct}} merchants in 10 minutes",
  };
  await buildInForm(page, { ...cardTesting, condition: { ...cardTesting.condition, distinct: { field: "properties.merchant", at_least: 1 } } });
  // One value is any event with the field: refused where it is typed, and save waits.
  await page.waitForSelector("#error-condition-distinct:not(:empty)");
  assert.match(await page.textContent("#error-condition-distinct"), /at least 2/);
  assert.equal(await page.isDisabled("#save-rule"), true);
  await page.fill("#cond-distinct-at_least", "5");
  await saveAndWait(page, "ui-card-testing");
  assert.deepStrictEqual((await storedRule("ui-card-testing")).rule, cardTesting);
  assert.match(await page.textContent('#rules-table tr[data-rule="ui-card-testing"]'), /≥ 5 different properties\.merchant/);

  log("a fleet rule: all users' payments in one window, from the form, with its own placeholders");
  await page.goto(`${base}/admin/#/rules/new`);
  await page.waitForSelector("#rule-builder #field-id");
  await page.fill("#field-id", "ui-payments-surge");
  await page.selectOption("#when-kind", "activity");
  await page.fill("#when-noun", "bill");
  await page.fill("#when-verb", "paid");
  await page.check("#condition-window");
  await setDuration(page, "cond-seconds", 300);
  await page.fill("#cond-count_at_least", "20");
  assert.equal(await page.isVisible('button.chip[data-placeholder="properties.amount"]'), true,
    "a window per user offers the trigger's fields");
  await page.fill("#cond-group_by", "all");
  await page.waitForSelector('button.chip[data-placeholder="group"]');
  assert.equal(await page.isVisible('button.chip[data-placeholder="properties.amount"]'), false,
    "no one event fires a window across users, so no event field is offered");
  await page.selectOption("#action-type", "notify_operator");
  await page.selectOption("#action-severity", "warning");
  await page.fill("#field-message", "");
  await page.click('button.chip[data-placeholder="window.count"]');
  await page.type("#field-message", " bill payments from ");
  await page.click('button.chip[data-placeholder="group"]');
  await page.type("#field-message", " users within 5 minutes");
  await saveAndWait(page, "ui-payments-surge");
  assert.deepStrictEqual((await storedRule("ui-payments-surge")).rule, {
    id: "ui-payments-surge",
    when: { kind: "activity", noun: "bill", verb: "paid" },
    condition: { type: "window", seconds: 300, count_at_least: 20, group_by: "all" },
    action: { type: "notify_operator", severity: "warning" },
    message: "{{window.count}} bill payments from {{group}} users within 5 minutes",
  });
  assert.match(await page.textContent('#rules-table tr[data-rule="ui-payments-surge"]'), /≥ 20 in 300 s, across all users/);
  // The same window by a field: offered from the type's fields; an SMS is refused by the server.
  await page.goto(`${base}/admin/#/rules/ui-payments-surge`);
  await page.waitForSelector("#cond-group_by");
  assert.equal(await page.inputValue("#cond-group_by"), "all");
  const offered = await page.$$eval("#group-by-choices option", (os) => os.map((o) => o.value));
  assert.ok(offered.includes("user") && offered.includes("all") && offered.includes("properties.type"), offered.join(", "));

  log("a heartbeat rule about everyone's payments: its own placeholders, operator only");
  await page.goto(`${base}/admin/#/rules/new`);
  await page.waitForSelector("#rule-builder #field-id");
  await page.fill("#field-id", "ui-payments-flowing");
  await page.selectOption("#when-kind", "activity");
  await page.fill("#when-noun", "bill");
  await page.fill("#when-verb", "paid");
  await page.check("#condition-heartbeat");
  await setDuration(page, "cond-seconds", 600);
  await page.selectOption("#action-type", "notify_operator");
  await page.selectOption("#action-severity", "critical");
  assert.equal(await page.isVisible('button.chip[data-placeholder="properties.amount"]'), false,
    "no event fires a heartbeat, so no event field is offered");
  await page.fill("#field-message", "no bill payment from anyone since ");
  await page.click('button.chip[data-placeholder="heartbeat.last_seen"]');
  await saveAndWait(page, "ui-payments-flowing");
  assert.deepStrictEqual((await storedRule("ui-payments-flowing")).rule, {
    id: "ui-payments-flowing",
    when: { kind: "activity", noun: "bill", verb: "paid" },
    condition: { type: "heartbeat", seconds: 600 },
    action: { type: "notify_operator", severity: "critical" },
    message: "no bill payment from anyone since {{heartbeat.last_seen}}",
  });

  log("a rule with operators the form lacks opens in JSON and saves unchanged");
  const jsonOnly = {
    id: "ui-json-only",
    description: "prefix and $or are JSON-mode only",
    when: { kind: "activity", noun: { prefix: "bi" }, $or: [{ "properties.type": "gas" }, { "properties.amount": { numeric: [">=", 100, "<", 200] } }] },
    condition: { type: "first" },
    action: { type: "sms_user" },
    message: "hello {{user}}",
  };
  const created = await adminApi("PUT", "/rules/ui-json-only", { ...jsonOnly, version: 0 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await page.goto(`${base}/admin/#/rules/ui-json-only`);
  await page.waitForSelector("#rule-json");
  assert.equal(await page.isVisible("#rule-json"), true);
  assert.equal(await page.isVisible("#rule-builder"), false);
  assert.match(await page.textContent("#json-note"), /opens in JSON: .*(prefix|\$or)/);
  await page.click("#mode-form");
  assert.match(await page.textContent("#json-note"), /stays in JSON/);
  assert.equal(await page.isVisible("#rule-json"), true);
  await page.click("#save-rule");
  await page.waitForSelector('#rules-table tr[data-rule="ui-json-only"]');
  const kept = await storedRule("ui-json-only");
  assert.equal(kept.version, 2);
  assert.deepStrictEqual(kept.rule, jsonOnly);

  log("a message in two languages: each is edited in the form, checked, previewed, dry-run and saved");
  const first = seeds.find((r) => r.id === "first-bill-payment");
  await page.goto(`${base}/admin/#/rules/first-bill-payment`);
  await page.waitForSelector("#rule-builder #add-translation");
  await page.click("#add-translation");
  await page.fill("#translation-0-locale", "pt-BR");
  await page.waitForSelector("#error-translation-0:not(:empty)");
  assert.match(await page.textContent("#error-translation-0"), /write the message in this language/);
  assert.equal(await page.isDisabled("#save-rule"), true);
  await page.fill("#translation-0-text", "Obrigado pelo primeiro pagamento no Cube: ");
  // A placeholder chip writes into the language last typed in.
  await page.click('#rule-form .chip[data-placeholder="properties.amount"]');
  const portuguese = "Obrigado pelo primeiro pagamento no Cube: {{properties.amount}}";
  assert.equal(await page.inputValue("#translation-0-text"), portuguese);
  assert.equal(await page.inputValue("#field-message"), first.message, "the default text is untouched");
  // A tag of the right shape that is no language: only the server knows, and says so under the row.
  await page.fill("#translation-0-locale", "abcd");
  await page.click("#save-rule");
  await page.waitForSelector("#error-translation-0:not(:empty)");
  assert.match(await page.textContent("#error-translation-0"), /\$\.message\.abcd: .*BCP 47/);
  await page.fill("#translation-0-locale", "pt-BR");
  await page.waitForSelector('#preview-translations [data-locale="pt-BR"]');
  assert.match(await page.textContent('#preview-translations [data-locale="pt-BR"]'), /Obrigado pelo primeiro pagamento no Cube: \d+/);
  await page.selectOption("#action-quiet_hours", "ignore");
  await page.click("#dry-run");
  await page.waitForSelector('#dry-result .dry-translation[data-locale="pt-BR"]');
  assert.match(await page.textContent('#dry-result .dry-translation[data-locale="pt-BR"]'), /In pt-BR: Obrigado pelo primeiro pagamento no Cube: /);
  await saveAndWait(page, "first-bill-payment");
  const bilingual = (await storedRule("first-bill-payment")).rule;
  assert.deepStrictEqual(bilingual.message, { default: first.message, "pt-BR": portuguese });
  assert.deepStrictEqual(bilingual.action, { type: "sms_user", quiet_hours: "ignore" });
  await page.goto(`${base}/admin/#/rules/first-bill-payment`);
  await page.waitForSelector("#rule-builder #translation-0-locale");
  assert.equal(await page.isVisible("#rule-json"), false, "it reopens in the form");
  assert.equal(await page.inputValue("#translation-0-locale"), "pt-BR");
  assert.equal(await page.inputValue("#action-quiet_hours"), "ignore");
  await page.screenshot({ path: join(artifacts, "rule-builder-languages.png"), fullPage: true });

  log("a session that ends under unsaved work keeps it, and offers it back after signing in again");
  await page.goto(`${base}/admin/#/rules/bill-payment-burst`);
  await page.waitForSelector("#rule-builder #field-message");
  const edited = "Edited just before the token expired: {{window.count}}";
  await page.fill("#field-message", edited);
  // The edit schedules a preview: it must be in before the token expires, or the preview (not
  // the dry run) is the refused request, and the button is gone before the click lands.
  await page.waitForSelector('#preview-count[data-state="done"]');
  // The token expires: the next request is refused, and the console signs out.
  await page.evaluate(() => sessionStorage.setItem("cuba-admin-token", "expired.token.here"));
  await page.click("#dry-run");
  await page.waitForSelector("#sign-in");
  await page.fill("#token", adminToken);
  await page.click("#sign-in");
  await page.waitForSelector("#draft-kept");
  assert.match(page.url(), /#\/rules\/bill-payment-burst$/, "back where the session ended");
  await page.waitForSelector("#rule-builder #field-message");
  assert.notEqual(await page.inputValue("#field-message"), edited, "the saved rule opens first");
  await page.click("#restore-draft");
  assert.equal(await page.inputValue("#field-message"), edited);
  assert.equal(await page.locator("#draft-kept").count(), 0);
  assert.equal(await page.isVisible("#rule-builder"), true, "restored into the form");

  log("usable at 390 px: nothing wider than the screen");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await phone.newPage();
  small.on("pageerror", (error) => pageErrors.push(String(error)));
  await signIn(small, base, adminToken);
  await small.goto(`${base}/admin/#/rules/ui-two-payments`);
  await small.waitForSelector("#rule-builder #clause-0-field");
  await small.waitForFunction(() => document.querySelector("#preview-count")?.dataset.state === "done");
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  await small.screenshot({ path: join(artifacts, "rule-builder-390.png"), fullPage: true });
  await phone.close();

  assert.deepStrictEqual(pageErrors, []);
  assert.deepStrictEqual(foreign, []);
  console.log("[rule-builder] all steps passed; screenshots in " + artifacts);
} catch (error) {
  console.error(`[rule-builder] FAILED at "${step}": ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
