// The viewer in real headless Chromium: a real `reach demo` (server + agent) sharing a private
// Xvfb. What is drawn on the X server must appear in the canvas; input from the canvas must reach
// the X server; a view-only viewer's input must not.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, logIn, screenshot } from "./support/browser.mjs";
import { freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
import { startXvfb } from "./support/xvfb.mjs";

const PASSWORD = "demo password for tests";

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

/** Samples the canvas pixel at (x, y) as [r, g, b]. */
function pixel(page, x, y) {
  return page.evaluate(([px, py]) => {
    const canvas = document.getElementById("screen-canvas");
    const data = canvas.getContext("2d").getImageData(px, py, 1, 1).data;
    return [data[0], data[1], data[2]];
  }, [x, y]);
}

/** Where remote pixel (x, y) is on the page (the canvas letterboxes the remote picture). */
async function pagePoint(page, x, y) {
  const box = await page.evaluate(() => {
    const c = document.getElementById("screen-canvas");
    const r = c.getBoundingClientRect();
    const scale = Math.min(r.width / c.width, r.height / c.height);
    return { left: r.left + (r.width - c.width * scale) / 2, top: r.top + (r.height - c.height * scale) / 2, scale };
  });
  return { x: box.left + x * box.scale, y: box.top + y * box.scale };
}

function near(actual, expected, tolerance) {
  return actual.every((value, i) => Math.abs(value - expected[i]) <= tolerance);
}

describe("viewer", () => {
  let xvfb;
  let demo;
  let url;
  let browser;
  let token;
  let sessionId;

  before(async () => {
    xvfb = await startXvfb();
    xvfb.fill("#204080");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display], { REACH_ADMIN_PASSWORD: PASSWORD });
    await waitHealthy(`${url}/healthz`, demo);
    token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
    const machine = await until("the demo agent online", async () => {
      const machines = await api(url, token, "GET", "/api/machines");
      return machines.find((m) => m.online);
    });
    sessionId = (await api(url, token, "POST", "/api/sessions", { machine_id: machine.id })).id;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    demo?.kill("SIGTERM");
    xvfb?.stop();
  });

  test("the machine list shows the demo agent online", async () => {
    const page = await browser.newPage();
    await logIn(page, url, "admin", PASSWORD);
    const row = page.getByRole("row").filter({ hasText: "demo-desktop" });
    await row.waitFor();
    assert.match(await row.innerText(), /online/);
    await screenshot(page, "console-machines-demo");
    await page.close();
  });

  for (const codec of ["raw", "h264"]) {
    test(`the remote screen appears in the canvas (${codec})`, async (t) => {
      const page = await browser.newPage();
      await logIn(page, url, "admin", PASSWORD);
      if (codec === "h264") {
        const supported = await page.evaluate(async () =>
          typeof VideoDecoder !== "undefined" &&
          (await VideoDecoder.isConfigSupported({ codec: "avc1.42C01F" })).supported);
        if (!supported) {
          t.skip("this Chromium build cannot decode H.264 (VideoDecoder.isConfigSupported said no)");
          return;
        }
      }
      await page.goto(`${url}/viewer.html?codec=${codec}#${sessionId}`);
      await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
      assert.equal(await page.evaluate(() => window.reachViewer.codec), codec);
      const tolerance = codec === "raw" ? 0 : 24;
      await until("the initial colour", async () => near(await pixel(page, 320, 240), [0x20, 0x40, 0x80], tolerance));
      xvfb.fill("#e0c020");
      await until("the changed colour", async () => near(await pixel(page, 100, 100), [0xe0, 0xc0, 0x20], tolerance));
      await screenshot(page, `viewer-${codec}`);
      await page.close();
      xvfb.fill("#204080");
    });
  }

  test("clicking and typing in the viewer reach the X server by physical key", async () => {
    const page = await browser.newPage();
    await logIn(page, url, "admin", PASSWORD);
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    assert.equal(await page.evaluate(() => window.reachViewer.access), "control");
    await until("the tab to name the machine", () => page.evaluate(() => document.title === "demo-desktop — Reach"));
    await until("a still screen to read as idle", async () => /idle/.test(await page.locator("#stats").innerText()));
    const canvas = page.locator("#screen-canvas");
    // The picture is scaled to the window; remote (160, 360) is wherever that lands.
    const target = await pagePoint(page, 160, 360);
    await page.mouse.click(target.x, target.y);
    await until("the pointer to move", () => {
      const { x, y } = xvfb.pointer();
      return Math.abs(x - 160) <= 2 && Math.abs(y - 360) <= 2;
    });
    const keys = xvfb.watchKeys();
    await new Promise((ok) => setTimeout(ok, 300)); // let xev select its events
    // A toolbar action hands the keyboard straight back to the remote screen.
    await page.getByRole("button", { name: "Refresh" }).click();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "screen-canvas");
    await page.keyboard.press("KeyQ");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ControlRight");
    await until("the key presses", () => keys.seen.filter((k) => k.type === "KeyPress").length >= 3);
    keys.stop();
    const pressed = keys.seen.filter((k) => k.type === "KeyPress").map((k) => k.keycode);
    // X keycodes are evdev codes + 8: Q=16→24, Left=105→113, Right Ctrl=97→105.
    assert.deepEqual(pressed.slice(0, 3), [24, 113, 105]);
    await page.close();
  });

  test("pasting sends the viewer's clipboard to the remote, whose clipboard comes back", async () => {
    const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
    const page = await context.newPage();
    await logIn(page, url, "admin", PASSWORD);
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    const text = "héllo from the viewer ✓";
    await page.evaluate((t) => navigator.clipboard.writeText(t), text);
    const keys = xvfb.watchKeys();
    await new Promise((ok) => setTimeout(ok, 300));
    await page.getByRole("button", { name: "Paste clipboard" }).click();
    // The agent made the text the X clipboard and pressed Ctrl+V (physical keys)…
    await until("Ctrl+V on the X server", () => keys.seen.some((k) => k.type === "KeyPress" && k.keycode === 55));
    assert.equal(await page.evaluate(() => document.activeElement?.id), "screen-canvas", "typing goes on after Paste");
    keys.stop();
    // …and the remote clipboard change came back to the viewer.
    await until("the clipboard echo", () => page.evaluate((t) => window.reachViewer.lastClipboard === t, text));
    await context.close();
  });

  test("a view-only viewer's input never reaches the X server", async () => {
    await api(url, token, "POST", "/api/users", { username: "watcher", password: "watcher password 1", role: "viewer" }).catch(() => undefined);
    const context = await browser.newContext();
    const page = await context.newPage();
    await logIn(page, url, "watcher", "watcher password 1");
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    assert.equal(await page.evaluate(() => window.reachViewer.access), "view_only");
    assert.match(await page.evaluate(() => window.reachViewer.usb), /view-only/, "the viewer says why USB is unavailable");
    assert.equal(await page.locator("#cad").isDisabled(), true);
    const before = xvfb.pointer();
    const keys = xvfb.watchKeys();
    await new Promise((ok) => setTimeout(ok, 300));
    const canvas = page.locator("#screen-canvas");
    const target = await pagePoint(page, 10, 10);
    await page.mouse.click(target.x, target.y);
    await canvas.focus();
    await page.keyboard.press("KeyW");
    await new Promise((ok) => setTimeout(ok, 1000));
    keys.stop();
    assert.deepEqual(xvfb.pointer(), before);
    assert.equal(keys.seen.length, 0);
    await screenshot(page, "viewer-view-only");
    await context.close();
  });
});
