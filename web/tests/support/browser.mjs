// Launches Debian's Chromium headless through playwright-core (never a downloaded browser).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS } from "./reach.mjs";
import { checkA11y } from "./a11y.mjs";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
  });
}

/** The two sizes every screenshot is taken at: a laptop and a phone. */
export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** Two animation frames: the layout after a resize has been drawn. */
export function settle(page) {
  return page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
}

/** Saves screenshots under artifacts/ (CI keeps them; people look at them): NAME.png at
 * 1440×900, NAME-phone.png at 390×844 and NAME-dark.png (dark theme) at 1440×900. The page
 * gets its own size and the light theme back afterwards. Each of the three is also checked
 * with axe-core (no serious or critical accessibility violation). */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const own = page.viewportSize();
  for (const [suffix, size] of [["", DESKTOP], ["-phone", PHONE]]) {
    await page.setViewportSize(size);
    await settle(page);
    await page.screenshot({ path: join(ARTIFACTS, `${name}${suffix}.png`), fullPage: true });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > size.width) throw new Error(`${name}: the page is ${wide} px wide at ${size.width} px`);
    await checkA11y(page, `${name}${suffix}`);
  }
  // The dark theme (prefers-color-scheme: dark) at laptop size.
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: "dark" });
  await settle(page);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-dark.png`), fullPage: true });
  await checkA11y(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: "light" });
  if (own) await page.setViewportSize(own);
  await settle(page);
}

/** Logs in through the real login form and waits for the machine list. */
export async function logIn(page, url, username, password) {
  await page.goto(url);
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Machines" }).waitFor();
}
