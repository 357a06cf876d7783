// What the browser tests share: their settings from the environment, and Debian's Chromium
// launched headless for a machine whose network is closed.
import { chromium } from "playwright-core";

/** The environment variable `name`; the test cannot run without it. */
export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

export function launch() {
  return chromium.launch({
    executablePath: env("CUBA_TEST_CHROMIUM"),
    headless: true,
    // This machine's network is closed: without these Chromium keeps dialling Google.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Signs `page` in with the admin token and waits for the dashboard. */
export async function signIn(page, base, adminToken) {
  await page.goto(`${base}/admin/`);
  await page.fill("#token", adminToken);
  await page.click("#sign-in");
  await page.waitForSelector("#activity-chart svg");
}
