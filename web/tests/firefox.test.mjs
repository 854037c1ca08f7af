// The console and the viewer in Debian's Firefox ESR (headless, through geckodriver): the same
// real `reach demo` on a private Xvfb as the Chromium tests, its agent sharing the fake USB
// backend (a loopback device and a CDC-ACM serial adapter that echoes).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REACH_BIN, freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
import { FIREFOX, GECKODRIVER, FirefoxSession, firefoxAvailable } from "./support/webdriver.mjs";
import { startXvfb } from "./support/xvfb.mjs";

const PASSWORD = "firefox test password";

async function api(url, token, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const PIXEL = `const c = document.getElementById("screen-canvas");
  return Array.from(c.getContext("2d").getImageData(arguments[0], arguments[1], 1, 1).data.slice(0, 3));`;

describe("firefox", () => {
  let xvfb;
  let demo;
  let url;
  let firefox;
  let sessionId;
  let usbSessionId;

  before(async () => {
    assert.ok(firefoxAvailable(), `${FIREFOX} or ${GECKODRIVER} missing: run scripts/setup.sh`);
    xvfb = await startXvfb();
    xvfb.fill("#8040c0");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = mkdtempSync(join(tmpdir(), "reach-firefox-config-"));
    execFileSync(REACH_BIN, ["usb", "acl", "add", "--vendor-id", "0525"], { env: { ...process.env, REACH_CONFIG_DIR: config } });
    demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display, "--usb-backend", "fake"],
      { REACH_ADMIN_PASSWORD: PASSWORD, REACH_USB_PASSTHROUGH: "1", REACH_CONFIG_DIR: config });
    await waitHealthy(`${url}/healthz`, demo);
    const token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
    const machine = await until("the demo agent online", async () =>
      (await api(url, token, "GET", "/api/machines")).find((m) => m.online));
    sessionId = (await api(url, token, "POST", "/api/sessions", { machine_id: machine.id })).id;
    usbSessionId = (await api(url, token, "POST", "/api/sessions", { machine_id: machine.id, usb: true })).id;
    firefox = await FirefoxSession.start();
  });
  after(async () => {
    await firefox?.quit();
    demo?.kill("SIGTERM");
    xvfb?.stop();
  });

  test("the login form signs in and the machine list shows the demo agent online", async () => {
    await firefox.goto(url);
    await firefox.type("#f-user-name", "admin");
    await firefox.type("#f-password", PASSWORD);
    await firefox.click("form button[type=submit]");
    const row = await firefox.until("the demo machine row", `for (const tr of document.querySelectorAll("tr"))
      if (tr.textContent.includes("demo-desktop")) return tr.textContent; return null;`);
    assert.match(row, /online/);
  });

  test("the viewer draws the remote screen (raw, and H.264 when this Firefox decodes it)", async (t) => {
    await firefox.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await firefox.until("a raw frame", "return window.reachViewer && window.reachViewer.framesDrawn > 0");
    assert.deepEqual(await firefox.execute(PIXEL, 320, 240), [0x80, 0x40, 0xc0]);
    const h264 = await firefox.execute(`return typeof VideoDecoder !== "undefined"`);
    if (!h264) {
      t.diagnostic("this Firefox has no WebCodecs VideoDecoder: H.264 not checked");
      return;
    }
    await firefox.goto(`${url}/viewer.html?codec=h264#${sessionId}`);
    await firefox.until("an H.264 frame", `return window.reachViewer && window.reachViewer.codec === "h264"
      && window.reachViewer.framesDrawn > 0`);
    const [r, g, b] = await firefox.execute(PIXEL, 320, 240);
    assert.ok(Math.abs(r - 0x80) <= 24 && Math.abs(g - 0x40) <= 24 && Math.abs(b - 0xc0) <= 24, `pixel ${r},${g},${b}`);
  });

  /** The text of the stat `key` of the device row `busId`. */
  const stat = (busId, key) => firefox.execute(`const dd = document.querySelector('li[data-bus-id="${busId}"] [data-stat="${key}"] dd');
    return dd ? dd.textContent : null;`);

  /** The viewer of the USB session with its USB panel open and the devices listed. */
  async function usbPanel() {
    await firefox.goto("about:blank"); // a fresh page even when the viewer is open already
    await firefox.goto(`${url}/viewer.html?codec=raw#${usbSessionId}`);
    await firefox.until("USB granted", `return window.reachViewer && window.reachViewer.usb === "available"`);
    await firefox.click("#usb");
    await firefox.until("the device list", `const list = document.querySelector("#usb-panel .usb-list");
      return list && list.textContent.includes("Fake serial (CDC-ACM)") ? list.textContent : null;`);
  }

  test("the USB panel lists the remote devices, opens one with live statistics, and closes it", async () => {
    await usbPanel();
    const list = await firefox.execute(`return document.querySelector("#usb-panel .usb-list").innerText`);
    assert.match(list, /Fake loopback\s+0525:a4a0\s+serial FAKE0001/);
    assert.match(list, /Fake serial \(CDC-ACM\)\s+0525:a4a7\s+serial FAKEACM1/);
    await firefox.click('button[aria-label="Open Fake loopback"]');
    await firefox.until("the claim's statistics", `return document.querySelector('li[data-bus-id="fake-1"] [data-stat="transfers"]')`);
    assert.equal(await stat("fake-1", "rtt-p50"), "–");
    await firefox.click('li[data-bus-id="fake-1"] .actions button');
    await firefox.until("the descriptor", `const d = document.querySelector('li[data-bus-id="fake-1"] .descriptor');
      return d && d.textContent.startsWith("Device descriptor: 12 01")`);
    await until("a measured round trip", async () => /ms$/.test(await stat("fake-1", "rtt-p50")));
    assert.equal(await stat("fake-1", "bytes-in"), "18 B");
    assert.equal(await stat("fake-1", "transfers"), "1");
    assert.equal(await stat("fake-1", "errors"), "0");
    assert.equal(await stat("fake-1", "resumes"), "0");
    await firefox.click('button[aria-label="Close Fake loopback"]');
    await firefox.until("the device to be closable no more", `return document.querySelector('button[aria-label="Open Fake loopback"]')`);
    assert.equal(await stat("fake-1", "transfers"), null, "the statistics go with the claim");
  });

  test("the serial terminal echoes typed text from the fake CDC-ACM device, and its per-second figures move", async () => {
    await usbPanel();
    await firefox.click('button[aria-label="Open Fake serial (CDC-ACM)"]');
    const terminal = 'section[aria-label="Serial terminal for Fake serial (CDC-ACM)"]';
    await firefox.until("the first line settings", `const t = document.querySelector('${terminal}'); return t && t.dataset.line === "115200 8N1"`);
    await until("one read waiting on the bulk IN endpoint", async () => (await stat("fake-2", "in-flight")) === "1");
    let moved = false;
    for (let line = 0; line < 40 && !moved; line++) {
      await firefox.type(`${terminal} form input`, `hello firefox ${line}\uE007`);
      moved = /B\/s$/.test(await stat("fake-2", "rate-out"));
      if (!moved) await new Promise((ok) => setTimeout(ok, 250));
    }
    assert.ok(moved, "bytes per second to the device moved");
    await firefox.until("the echo", `return document.querySelector('${terminal} [role=log]').textContent.includes("hello firefox")`);
    await until("the per-second figures to return to idle", async () => (await stat("fake-2", "rate-out")) === "idle");
    assert.equal(await stat("fake-2", "errors"), "0");
    await firefox.click('button[aria-label="Close Fake serial (CDC-ACM)"]');
    await firefox.until("the claim closed", `return document.querySelector('button[aria-label="Open Fake serial (CDC-ACM)"]')`);
  });

  test("an open serial claim is resumed after the viewer's connection drops, and still echoes", async () => {
    await usbPanel();
    await firefox.click('button[aria-label="Open Fake serial (CDC-ACM)"]');
    const terminal = 'section[aria-label="Serial terminal for Fake serial (CDC-ACM)"]';
    await firefox.until("the first line settings", `const t = document.querySelector('${terminal}'); return t && t.dataset.line === "115200 8N1"`);
    await until("one read waiting on the bulk IN endpoint", async () => (await stat("fake-2", "in-flight")) === "1");
    await firefox.execute("window.reachViewer.dropConnection()");
    await firefox.until("the viewer to rejoin by itself", `return window.reachViewer.state === "live"`, 20_000);
    await until("the claim to be resumed", async () => (await stat("fake-2", "resumes")) === "1", 20_000);
    await firefox.type(`${terminal} form input`, "after the drop\uE007");
    await firefox.until("the echo", `return document.querySelector('${terminal} [role=log]').textContent.includes("after the drop")`);
    await firefox.click('button[aria-label="Close Fake serial (CDC-ACM)"]');
    await firefox.until("the claim closed", `return document.querySelector('button[aria-label="Open Fake serial (CDC-ACM)"]')`);
  });
});
