// The viewer's USB panel in real headless Chromium against a real `reach demo` whose agent shares
// the fake USB backend (a loopback device 0525:a4a0 and a CDC-ACM serial adapter 0525:a4a7 that
// echoes): the browser speaks the Reach USB protocol over the viewer's socket itself.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, screenshot } from "./support/browser.mjs";
import { buildSync } from "esbuild";
import { REACH_BIN, freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
import { startXvfb } from "./support/xvfb.mjs";

const PASSWORD = "demo password for usb tests";

/** The protobuf types the page uses (web/src/gen, generated from the .proto), bundled for Node. */
async function protocol() {
  const out = buildSync({ entryPoints: [join(import.meta.dirname, "..", "src", "gen", "reach.js")], bundle: true, format: "esm", write: false, platform: "node" });
  return (await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].contents).toString("base64")}`)).reach;
}

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

/** A TCP relay to the server on loopback whose connections the test can cut, as a network
 * failure would: no WebSocket close, the browser sees 1006 and the server a dropped socket. */
function cuttableProxy(targetPort) {
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = createConnection(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
  });
  return new Promise((ok) =>
    server.listen(0, "127.0.0.1", () =>
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        cut: () => [...sockets].forEach((socket) => socket.destroy()),
        close: () => {
          server.close();
          [...sockets].forEach((socket) => socket.destroy());
        },
      })));
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

  async function viewer(base = url) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript((t) => {
      if (!localStorage.getItem("reach.login_token")) localStorage.setItem("reach.login_token", t);
    }, token);
    const page = await context.newPage();
    await page.goto(`${base}/viewer.html?codec=raw#${sessionId}`);
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
    await until("an idle claim to read as idle each way", async () =>
      (await stat(device, "rate-out")) === "idle" && (await stat(device, "rate-in")) === "idle");
    assert.equal(await stat(device, "resumes"), "0");
    assert.match(await stat(device, "credit"), /^\d+(\.\d)? (B|KiB|MiB) \/ \d+(\.\d)? (B|KiB|MiB)$/);
    const input = terminal.getByLabel("Send to the device");
    const log = terminal.getByRole("log");
    // Lines go out until a one-second tick sees them as bytes per second each way (bounded).
    let seen = null;
    for (let line = 0; line < 40 && !seen; line++) {
      await input.fill(`hello board ${line}`);
      await input.press("Enter");
      const [out, inn] = [await stat(device, "rate-out"), await stat(device, "rate-in")];
      if (/B\/s$/.test(out) && /B\/s$/.test(inn)) seen = { out, inn };
      else await new Promise((ok) => setTimeout(ok, 250));
    }
    assert.ok(seen, "the per-second figures moved during the transfers");
    await until("the echo", async () => (await log.innerText()).includes("hello board"));
    await until("the counters to move", async () => (await stat(device, "bytes-out")) !== before && (await stat(device, "bytes-in")) !== "0 B");
    await screenshot(page, "viewer-usb-serial");
    await until("the per-second figures to return to idle", async () =>
      (await stat(device, "rate-out")) === "idle" && (await stat(device, "rate-in")) === "idle");
    assert.equal(await stat(device, "errors"), "0");
    await panel.getByRole("button", { name: "Close Fake serial (CDC-ACM)" }).click();
    await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).waitFor();
    assert.equal(await terminal.count(), 0);
    await page.context().close();
  });

  test("an open claim survives a dropped connection: the viewer reconnects, resumes it, and it still works", async () => {
    const { page, panel } = await viewer();
    await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).click();
    const terminal = panel.getByRole("region", { name: "Serial terminal for Fake serial (CDC-ACM)" });
    await until("the first line settings", async () => (await terminal.getAttribute("data-line")) === "115200 8N1");
    const device = panel.locator('li[data-bus-id="fake-2"]');
    await until("one read waiting on the bulk IN endpoint", async () => (await stat(device, "in-flight")) === "1");
    // The server sees an abnormal close, as for a dropped network connection.
    await page.evaluate(() => window.reachViewer.dropConnection());
    await panel.getByText("Connection lost: open devices stay claimed").waitFor();
    await until("the viewer to rejoin by itself", () => page.evaluate(() => window.reachViewer.state === "joined" || window.reachViewer.state === "live"), 20_000);
    await until("the claim to be resumed", async () => (await stat(device, "resumes")) === "1");
    assert.equal(await panel.getByRole("button", { name: "Close Fake serial (CDC-ACM)" }).count(), 1, "the claim is still open");
    const input = terminal.getByLabel("Send to the device");
    await input.fill("after the drop");
    await input.press("Enter");
    await until("the echo over the resumed claim", async () => (await terminal.getByRole("log").innerText()).includes("after the drop"));
    assert.equal(await stat(device, "errors"), "0");
    await screenshot(page, "viewer-usb-resumed");
    await panel.getByRole("button", { name: "Close Fake serial (CDC-ACM)" }).click();
    await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).waitFor();
    await page.context().close();
  });

  test("an open claim survives a cut network connection (every TCP connection of the page dropped) and works after the automatic reconnect", async () => {
    const proxy = await cuttableProxy(Number(new URL(url).port));
    try {
      const { page, panel } = await viewer(proxy.url);
      await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).click();
      const terminal = panel.getByRole("region", { name: "Serial terminal for Fake serial (CDC-ACM)" });
      await until("the first line settings", async () => (await terminal.getAttribute("data-line")) === "115200 8N1");
      const device = panel.locator('li[data-bus-id="fake-2"]');
      await until("one read waiting on the bulk IN endpoint", async () => (await stat(device, "in-flight")) === "1");
      proxy.cut();
      await until("the viewer to see the connection lost", () => page.evaluate(() => window.reachViewer.state === "lost"));
      await until("the viewer to rejoin by itself", () => page.evaluate(() => window.reachViewer.state === "live"), 20_000);
      await until("the claim to be resumed", async () => (await stat(device, "resumes")) === "1");
      const input = terminal.getByLabel("Send to the device");
      await input.fill("after the cut");
      await input.press("Enter");
      await until("the echo over the resumed claim", async () => (await terminal.getByRole("log").innerText()).includes("after the cut"));
      await panel.getByRole("button", { name: "Close Fake serial (CDC-ACM)" }).click();
      await panel.getByRole("button", { name: "Open Fake serial (CDC-ACM)" }).waitFor();
      await page.context().close();
    } finally {
      proxy.close();
    }
  });

  test("a claim attached with reach usb attach shows 'attached to <host> by <technician>' live on the session and the device row", async () => {
    const { page, panel } = await viewer();
    const consolePage = await page.context().newPage();
    // The context is signed in already (the viewer's login token in localStorage).
    await consolePage.goto(`${url}/#/sessions`);
    await consolePage.getByRole("heading", { name: "Sessions" }).waitFor();
    // What `reach usb attach --session` does: a UsbAttachNote over a viewer socket of this
    // session that has a USB host session on the agent (HELLO, then a LIST).
    const { Envelope } = (await protocol()).v1;
    const usbFrame = (op, requestId, body) => {
      const json = new TextEncoder().encode(JSON.stringify(body));
      const frame = new Uint8Array(8 + json.length);
      const view = new DataView(frame.buffer);
      view.setUint8(0, op);
      view.setUint8(1, 1);
      view.setUint32(4, requestId);
      frame.set(json, 8);
      return Array.from(Envelope.encode({ usb: { frame } }).finish());
    };
    const hello = usbFrame(0x10, 0, { versions: [2], capabilities: [], window: 4 * 1024 * 1024 });
    const list = usbFrame(0x01, 1, {});
    const note = (attached) => Array.from(Envelope.encode({ usbAttachNote: {
      attached, claimId: 7, vendorId: 0x0525, productId: 0xa4a0, serial: "FAKE0001", busId: "fake-1", hostName: "tech-laptop" } }).finish());
    const viewerToken = (await api(url, token, "POST", `/api/sessions/${sessionId}/viewer-token`)).token;
    const auth = Array.from(Envelope.encode({ viewerAuth: { token: viewerToken } }).finish());
    // The page's socket hands each message to Node, which reads it with the same protobuf types.
    await page.exposeFunction("isUsbEnvelope", (bytes) => Envelope.decode(Uint8Array.from(bytes)).usb != null);
    await page.evaluate(async ({ auth, hello, list, attach }) => {
      const socket = new WebSocket(`ws://${location.host}/ws/viewer`);
      socket.binaryType = "arraybuffer";
      window.attachSocket = socket;
      let usbAnswers = 0;
      await new Promise((ok, fail) => {
        setTimeout(() => fail(new Error(`no USB answer on the second socket (${usbAnswers})`)), 15_000);
        socket.onerror = () => fail(new Error("socket error"));
        socket.onopen = () => socket.send(new Uint8Array(auth));
        let sentUsb = false;
        socket.onmessage = async (message) => {
          if (!sentUsb) {
            sentUsb = true; // AuthOk: now a USB host session for this viewer
            socket.send(new Uint8Array(hello));
            socket.send(new Uint8Array(list));
            return;
          }
          // The host's HELLO, then its LIST answer.
          if (await window.isUsbEnvelope(Array.from(new Uint8Array(message.data))) && ++usbAnswers >= 2) ok();
        };
      });
      socket.send(new Uint8Array(attach));
    }, { auth, hello, list, attach: note(true) });
    const attachedLine = consolePage.getByRole("row").getByText("0525:a4a0 attached to tech-laptop by admin");
    await until("the sessions page to show the attached claim", async () => (await attachedLine.count()) === 1);
    const loopback = panel.locator('li[data-bus-id="fake-1"]');
    await until("the device row to say where it is attached", async () =>
      /Attached to tech-laptop by admin/.test(await loopback.innerText()));
    await screenshot(consolePage, "console-sessions-usb-attached");
    await screenshot(page, "viewer-usb-attached");
    await page.evaluate((detach) => window.attachSocket.send(new Uint8Array(detach)), note(false));
    await until("the note to go away when detached", async () => !/attached to/i.test(await loopback.innerText()));
    await until("the sessions page to drop it", async () => (await attachedLine.count()) === 0);
    await page.evaluate(() => window.attachSocket.close(1000));
    await page.context().close();
  });
});
