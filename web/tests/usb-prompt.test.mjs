// The host's `prompt_on_open` question in the viewer's USB panel: a real `reach server` and a
// managed `reach agent` with the fake USB backend, an ACL rule that asks on every open, and the
// agent's file-driven prompt (`--consent-file`), so the question stays pending until the test
// answers it as the person at the machine would.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, screenshot } from "./support/browser.mjs";
import { REACH_BIN, spawnReach, startServer, until } from "./support/reach.mjs";

async function api(url, token, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

describe("USB prompt in the viewer", () => {
  let server;
  let agent;
  let browser;
  let token;
  let sessionId;
  let answerFile;

  before(async () => {
    server = await startServer();
    token = (await api(server.url, null, "POST", "/api/auth/login", { username: "admin", password: server.password })).token;
    const machine = await api(server.url, token, "POST", "/api/machines", { name: "prompt-host" });
    const { key } = await api(server.url, token, "POST", `/api/machines/${machine.id}/keys`);
    const dir = mkdtempSync(join(tmpdir(), "reach-usb-prompt-"));
    const config = join(dir, "config");
    const keyFile = join(dir, "agent.key");
    answerFile = join(dir, "answer");
    writeFileSync(keyFile, `${key}\n`);
    // Every open of a fake device (vendor 0525) asks the person at the machine.
    execFileSync(REACH_BIN, ["usb", "acl", "add", "--vendor-id", "0525", "--prompt"], { env: { ...process.env, REACH_CONFIG_DIR: config } });
    agent = spawnReach(["agent", "--server", server.url, "--key-file", keyFile, "--consent-file", answerFile, "--usb-backend", "fake"],
      { REACH_CONFIG_DIR: config, REACH_USB_PASSTHROUGH: "1", DISPLAY: "", REACH_DISPLAY: "" });
    await until("the agent online", async () => (await api(server.url, token, "GET", `/api/machines/${machine.id}`)).online);
    sessionId = (await api(server.url, token, "POST", "/api/sessions", { machine_id: machine.id, usb: true })).id;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    agent?.kill("SIGTERM");
    await server?.stop();
  });

  async function panel() {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript((t) => {
      if (!localStorage.getItem("reach.login_token")) localStorage.setItem("reach.login_token", t);
    }, token);
    const page = await context.newPage();
    await page.goto(`${server.url}/viewer.html?codec=raw#${sessionId}`);
    await until("USB granted", () => page.evaluate(() => window.reachViewer?.usb === "available").catch(() => false));
    await page.getByRole("button", { name: "USB available" }).click();
    const usb = page.getByRole("complementary", { name: "USB devices" });
    await usb.getByText("Fake loopback").waitFor();
    return { page, usb };
  }

  test("while the person at the machine is asked, the panel says so; their yes opens the claim", async () => {
    const { page, usb } = await panel();
    await usb.getByRole("button", { name: "Open Fake loopback" }).click();
    const device = usb.locator('li[data-bus-id="fake-1"]');
    await device.getByText("Waiting for the remote user to allow Fake loopback…").waitFor();
    assert.equal(await usb.getByRole("button", { name: "Open Fake loopback" }).isDisabled(), true, "no second open while waiting");
    await screenshot(page, "viewer-usb-waiting");
    assert.equal(existsSync(answerFile), false, "the agent is still waiting for an answer");
    writeFileSync(answerFile, "yes\n");
    await usb.getByRole("button", { name: "Close Fake loopback" }).waitFor();
    await device.locator('[data-stat="transfers"]').waitFor();
    assert.equal(await device.getByText(/Waiting for the remote user/).count(), 0);
    await usb.getByRole("button", { name: "Close Fake loopback" }).click();
    await usb.getByRole("button", { name: "Open Fake loopback" }).waitFor();
    await page.context().close();
  });

  test("when the person at the machine says no, the panel says the device was not allowed", async () => {
    const { page, usb } = await panel();
    await usb.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).click();
    const device = usb.locator('li[data-bus-id="fake-2"]');
    await device.getByText("Waiting for the remote user to allow Fake serial (CDC-ACM)…").waitFor();
    writeFileSync(answerFile, "no\n");
    const problem = device.getByText(/was not allowed: the person at the remote machine said no/);
    await problem.waitFor();
    assert.equal(await device.getByText(/Waiting for the remote user/).count(), 0);
    assert.equal(await usb.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).isEnabled(), true, "it may be asked again");
    await screenshot(page, "viewer-usb-denied");
    await page.context().close();
  });
});
