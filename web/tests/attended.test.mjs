// Attended support in real headless Chromium: a support code made in the console, an agent
// started with it on a private Xvfb, consent answered by the scripted (file) provider. The
// viewer sees nothing before the yes, and nothing at all after a no.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { launch, logIn, screenshot } from "./support/browser.mjs";
import { spawnReach, startServer, until } from "./support/reach.mjs";
import { startXvfb } from "./support/xvfb.mjs";

describe("attended support", () => {
  let xvfb;
  let server;
  let browser;
  const agents = [];

  before(async () => {
    xvfb = await startXvfb();
    xvfb.fill("#30a050");
    server = await startServer();
    browser = await launch();
  });
  after(async () => {
    for (const agent of agents) agent.kill("SIGTERM");
    await browser?.close();
    await server?.stop();
    xvfb?.stop();
  });

  /** Creates a code in the console, starts an agent with it, and opens the viewer on its session. */
  async function attend(page, consentFile) {
    await logIn(page, server.url, "admin", server.password);
    await page.getByRole("link", { name: "Support codes" }).click();
    await page.getByRole("button", { name: "Create support code" }).click();
    const code = (await page.locator("#support-code").innerText()).trim();
    const since = Date.now() - 1000;
    assert.match(code, /^[A-HJKMNP-Z2-9]{3}-[A-HJKMNP-Z2-9]{3}-[A-HJKMNP-Z2-9]{3}$/);
    await screenshot(page, "console-support-code");
    const agent = spawnReach(["agent", "--server", server.url, "--code", code, "--consent-file", consentFile, "--display", xvfb.display]);
    agents.push(agent);
    const token = await page.evaluate(() => localStorage.getItem("reach.login_token"));
    const session = await until("the attended session", async () => {
      const response = await fetch(`${server.url}/api/sessions`, { headers: { Authorization: `Bearer ${token}` } });
      const sessions = await response.json();
      const list = Array.isArray(sessions) ? sessions : Object.values(sessions).find(Array.isArray) ?? [];
      return list.find((s) => s.kind === "attended" && !s.ended_at_ms && s.created_at_ms >= since);
    });
    await page.goto(`${server.url}/viewer.html?codec=raw#${session.id}`);
    await until("the pending state", () => page.evaluate(() => window.reachViewer.state === "pending"));
    assert.match(await page.locator("#state").innerText(), /waiting for the user/i);
    return { agent, session };
  }

  test("the viewer sees the screen only after the person says yes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reach-consent-"));
    const consentFile = join(dir, "answer");
    const page = await browser.newPage();
    await attend(page, consentFile);
    await new Promise((ok) => setTimeout(ok, 500));
    assert.equal(await page.evaluate(() => window.reachViewer.framesDrawn), 0, "no frame before consent");
    await screenshot(page, "viewer-consent-pending");
    writeFileSync(consentFile, "yes\n");
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    const color = await page.evaluate(() => Array.from(document.getElementById("screen-canvas").getContext("2d").getImageData(50, 50, 1, 1).data.slice(0, 3)));
    assert.deepEqual(color, [0x30, 0xa0, 0x50]);
    await page.close();
  });

  test("the console follows the customer live: connected with a countdown, then accepted with Join", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reach-consent-"));
    const consentFile = join(dir, "answer");
    const context = await browser.newContext();
    const page = await context.newPage();
    await logIn(page, server.url, "admin", server.password);
    const machines = await context.newPage(); // a second tab on the machine list, never reloaded
    await machines.goto(`${server.url}/#/machines`);
    const before = await machines.getByRole("row").count();
    await page.getByRole("link", { name: "Support codes" }).click();
    await page.getByRole("button", { name: "Create support code" }).click();
    const code = (await page.locator("#support-code").innerText()).trim();
    await page.locator("#code-progress", { hasText: "Waiting for the customer to connect" }).waitFor();
    const agent = spawnReach(["agent", "--server", server.url, "--code", code, "--consent-file", consentFile, "--display", xvfb.display]);
    agents.push(agent);
    const waiting = page.locator("#code-progress", { hasText: /Customer connected — waiting for their answer \(\d+ s\)/ });
    await waiting.waitFor();
    await screenshot(page, "console-code-waiting");
    await until("the machine list to show the new machine by itself", async () => (await machines.getByRole("row").count()) > before);
    writeFileSync(consentFile, "yes\n");
    await page.locator("#join-accepted").waitFor();
    assert.match(await page.locator("#code-progress").innerText(), /^Accepted — Join$/);
    await page.locator("#join-accepted").click();
    await until("a first frame after Join", () =>
      page.evaluate(() => window.reachViewer?.framesDrawn > 0).catch(() => false));
    await context.close();
  });

  test("a no ends the session and nothing reaches the viewer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reach-consent-"));
    const consentFile = join(dir, "answer");
    const page = await browser.newPage();
    await attend(page, consentFile);
    writeFileSync(consentFile, "no\n");
    await until("the ended state", () => page.evaluate(() => window.reachViewer.state === "ended"));
    assert.match(await page.locator("#state").innerText(), /declined|ended/i);
    assert.equal(await page.evaluate(() => window.reachViewer.framesDrawn), 0);
    await screenshot(page, "viewer-consent-denied");
    await page.close();
  });

  test("sessions and machines read as words: host names, technicians, readable states, relative times and a history", async () => {
    const { token } = await (await fetch(`${server.url}/api/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "admin", password: server.password }),
    })).json();
    const context = await browser.newContext();
    await context.addInitScript((t) => localStorage.setItem("reach.login_token", t), token);
    const page = await context.newPage();
    const host = hostname();
    await page.goto(`${server.url}/#/sessions`);
    const open = page.getByRole("table", { name: "Open sessions" });
    const accepted = open.getByRole("row").filter({ hasText: host }).filter({ hasText: "accepted" });
    await accepted.first().waitFor();
    assert.match(await accepted.first().innerText(), /Attended \(support code\)[\s\S]*admin[\s\S]*View and control[\s\S]*(just now|min ago)/);
    const history = page.getByRole("table", { name: /Ended sessions/ });
    await history.getByRole("row").filter({ hasText: host }).filter({ hasText: "the customer declined" }).waitFor();
    const text = await page.locator("main").innerText();
    assert.doesNotMatch(text, /ses_|mch_|not_required|\bpending\b|consent_refused|Attended session \(/, "no ids or raw words");
    await screenshot(page, "console-sessions");

    await page.getByRole("link", { name: "Machines" }).click();
    const row = page.getByRole("row").filter({ hasText: "via a support code" }).first();
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(host));
    assert.doesNotMatch(await page.locator("main").innerText(), /Attended session \(/);
    await context.close();
  });
});
