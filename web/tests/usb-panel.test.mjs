// The viewer's USB panel in real headless Chromium against a real `reach demo` whose agent shares
// the fake USB backend (a loopback device 0525:a4a0 and a CDC-ACM serial adapter 0525:a4a7 that
// echoes): the browser speaks the Reach USB protocol over the viewer's socket itself.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, screenshot } from "./support/browser.mjs";
import { REACH_BIN, freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
import { startXvfb } from "./support/xvfb.mjs";

const PASSWORD = "demo password for usb tests";

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

describe("USB panel", () => {
  let xvfb;
  let demo;
  let url;
  let browser;
  let token;
  let sessionId;

  before(async () => {
    xvfb = await startXvfb(640, 480);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = mkdtempSync(join(tmpdir(), "reach-usb-panel-config-"));
    // The host's ACL shares the fake devices (vendor 0525) without asking.
    execFileSync(REACH_BIN, ["usb", "acl", "add", "--vendor-id", "0525"], { env: { ...process.env, REACH_CONFIG_DIR: config } });
    demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display, "--usb-backend", "fake"],
      { REACH_ADMIN_PASSWORD: PASSWORD, REACH_USB_PASSTHROUGH: "1", REACH_CONFIG_DIR: config });
    await waitHealthy(`${url}/healthz`, demo);
    token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
    const machine = await until("the demo agent online", async () => (await api(url, token, "GET", "/api/machines")).find((m) => m.online));
    sessionId = (await api(url, token, "POST", "/api/sessions", { machine_id: machine.id, usb: true })).id;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    demo?.kill("SIGTERM");
    xvfb?.stop();
  });

  async function viewer() {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript((t) => {
      if (!localStorage.getItem("reach.login_token")) localStorage.setItem("reach.login_token", t);
    }, token);
    const page = await context.newPage();
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("USB granted", () => page.evaluate(() => window.reachViewer?.usb === "available").catch(() => false));
    await page.getByRole("button", { name: "USB available" }).click();
    const panel = page.getByRole("complementary", { name: "USB devices" });
    await panel.waitFor();
    return { page, panel };
  }

  const stat = (device, key) => device.locator(`[data-stat="${key}"] dd`).innerText();

  test("the panel lists the remote host's devices with name, vendor:product and serial", async () => {
    const { page, panel } = await viewer();
    const devices = panel.getByRole("region", { name: "Devices on the remote machine" });
    await devices.getByText("Fake loopback").waitFor();
    const text = await devices.innerText();
    assert.match(text, /Fake loopback\s+0525:a4a0\s+serial FAKE0001/);
    assert.match(text, /Fake serial \(CDC-ACM\)\s+0525:a4a7\s+serial FAKEACM1/);
    assert.equal(await panel.getByRole("button", { name: /^Open / }).count(), 2);
    await screenshot(page, "viewer-usb-devices");
    await page.context().close();
  });

  test("a device opens and closes, and its statistics change with a control transfer", async () => {
    const { page, panel } = await viewer();
    await panel.getByRole("button", { name: "Open Fake loopback" }).click();
    const device = panel.locator('li[data-bus-id="fake-1"]');
    await device.locator('[data-stat="rtt-p50"]').waitFor();
    assert.equal(await stat(device, "rtt-p50"), "–", "no control round trip yet");
    assert.equal(await stat(device, "transfers"), "0");
    await device.getByRole("button", { name: "Read device descriptor" }).click();
    await until("the descriptor", async () => /^Device descriptor: 12 01/.test(await device.locator(".descriptor").innerText()));
    await until("a measured round trip", async () => /ms$/.test(await stat(device, "rtt-p50")));
    assert.match(await stat(device, "rtt-p99"), /ms$/);
    assert.equal(await stat(device, "bytes-in"), "18 B");
    assert.equal(await stat(device, "transfers"), "1");
    assert.equal(await stat(device, "errors"), "0");
    await panel.getByRole("button", { name: "Close Fake loopback" }).click();
    await panel.getByRole("button", { name: "Open Fake loopback" }).waitFor();
    assert.equal(await device.locator("[data-stat]").count(), 0, "the statistics go with the claim");
    // Opening again works: the host released the device.
    await panel.getByRole("button", { name: "Open Fake loopback" }).click();
    await panel.getByRole("button", { name: "Close Fake loopback" }).waitFor();
    await page.context().close();
  });

  test("a CDC-ACM device opens as a serial terminal: line settings apply, typed text is echoed, and the byte counters move", async () => {
    const { page, panel } = await viewer();
    await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).click();
    const terminal = panel.getByRole("region", { name: "Serial terminal for Fake serial (CDC-ACM)" });
    await terminal.waitFor();
    await until("the first line settings", async () => (await terminal.getAttribute("data-line")) === "115200 8N1");
    await terminal.getByLabel("Speed (baud)").selectOption("9600");
    await terminal.getByRole("button", { name: "Apply line settings" }).click();
    await until("9600 baud", async () => (await terminal.getAttribute("data-line")) === "9600 8N1");
    const device = panel.locator('li[data-bus-id="fake-2"]');
    const before = await stat(device, "bytes-out");
    await until("one read waiting on the bulk IN endpoint", async () => (await stat(device, "in-flight")) === "1");
    const input = terminal.getByLabel("Send to the device");
    await input.fill("hello board");
    await input.press("Enter");
    const log = terminal.getByRole("log");
    await until("the echo", async () => (await log.innerText()).includes("hello board"));
    await until("the counters to move", async () => (await stat(device, "bytes-out")) !== before && (await stat(device, "bytes-in")) !== "0 B");
    assert.equal(await stat(device, "errors"), "0");
    await screenshot(page, "viewer-usb-serial");
    await panel.getByRole("button", { name: "Close Fake serial (CDC-ACM)" }).click();
    await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).waitFor();
    assert.equal(await terminal.count(), 0);
    await page.context().close();
  });
});
