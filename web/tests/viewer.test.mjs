// The viewer in real headless Chromium: a real `reach demo` (server + agent) sharing a private
// Xvfb. What is drawn on the X server must appear in the canvas; input from the canvas must reach
// the X server; a view-only viewer's input must not.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PHONE, launch, logIn, screenshot } from "./support/browser.mjs";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REACH_BIN, freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
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

/** RGB of noise pixel `index`: the hash `reach bench x-noise` paints (bench/motion.rs). */
function noisePixel(index) {
  let h = Math.imul(index, 0x9e3779b1) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return [(h >>> 16) & 255, (h >>> 8) & 255, h & 255];
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
  let machineId;

  before(async () => {
    // 800×600: a full-screen noise change (~1.6 MB of raw tiles) needs two messages.
    xvfb = await startXvfb(800, 600);
    xvfb.fill("#204080");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The demo agent shares the fake USB backend (passthrough on, config in a fresh directory),
    // so a session opened with USB really has USB.
    const config = mkdtempSync(join(tmpdir(), "reach-usb-config-"));
    demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display, "--usb-backend", "fake"],
      { REACH_ADMIN_PASSWORD: PASSWORD, REACH_USB_PASSTHROUGH: "1", REACH_CONFIG_DIR: config });
    await waitHealthy(`${url}/healthz`, demo);
    token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
    const machine = await until("the demo agent online", async () => {
      const machines = await api(url, token, "GET", "/api/machines");
      return machines.find((m) => m.online);
    });
    machineId = machine.id;
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

  /** A browser context that is already signed in (the console stores the login token per origin), without spending a login (8/min per IP). */
  async function signedIn(context) {
    await context.addInitScript((t) => {
      if (!localStorage.getItem("reach.login_token")) localStorage.setItem("reach.login_token", t);
    }, token);
    return context.newPage();
  }

  for (const codec of ["raw", "h264"]) {
    test(`the remote screen appears in the canvas (${codec})`, async (t) => {
      const page = await signedIn(await browser.newContext());
      await page.goto(url);
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
      if (codec === "raw") {
        // 800×600 of noise is ~1.6 MB of raw tiles: the agent sends it in two messages (1 MiB
        // each at most) and the viewer draws it once both are in.
        execFileSync(REACH_BIN, ["bench", "x-noise", "--display", xvfb.display]);
        try {
          // The noise may be painted (and captured) in several smaller changes; a keyframe of
          // the whole noisy screen is always over 1 MiB, so it must arrive split.
          await page.getByRole("button", { name: "Refresh" }).click();
          await until("a split frame", () => page.evaluate(() => window.reachViewer.splitFrames > 0));
          for (const [x, y] of [[0, 0], [320, 240], [17, 401], [799, 599]]) {
            const expected = noisePixel(y * xvfb.width + x);
            await until(`noise at (${x}, ${y})`, async () => near(await pixel(page, x, y), expected, 0));
          }
        } finally {
          xvfb.fill("#204080");
        }
      }
      await page.close();
      xvfb.fill("#204080");
    });
  }

  test("a viewer link opens in any tab of a signed-in browser, and after signing in when signed out", async () => {
    const context = await browser.newContext();
    await signedIn(context);
    const tab = await context.newPage(); // a middle-click, a pasted link or a bookmark
    await tab.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame in the new tab", () => tab.evaluate(() => window.reachViewer.framesDrawn > 0));
    assert.doesNotMatch(tab.url(), /token/, "no token in the URL");
    await context.close();

    const fresh = await browser.newContext();
    const page = await fresh.newPage();
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("User name").fill("admin");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    // The page navigates from the console to the viewer: an evaluate may land mid-navigation.
    await until("the requested session after signing in", () =>
      page.evaluate(() => window.reachViewer?.framesDrawn > 0).catch(() => false));
    assert.ok(page.url().endsWith(`/viewer.html?codec=raw#${sessionId}`), page.url());
    await fresh.close();
  });

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

  test("the stats line says idle, never 0 fps, from the moment the viewer joins while nothing arrives", async () => {
    const context = await browser.newContext();
    // Every text the stats line ever shows, from the first paint on.
    await context.addInitScript(() => {
      window.statsSeen = [];
      document.addEventListener("DOMContentLoaded", () => {
        const stats = document.getElementById("stats");
        window.statsSeen.push(stats.textContent);
        new MutationObserver(() => window.statsSeen.push(stats.textContent)).observe(stats, { childList: true, characterData: true, subtree: true });
      });
    });
    const page = await signedIn(context);
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    assert.equal(await page.locator("#stats").innerText(), "idle", "before the first stats tick");
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    await until("the still screen to read as idle", async () => (await page.locator("#stats").innerText()) === "raw · idle");
    const seen = await page.evaluate(() => window.statsSeen);
    assert.ok(seen.length >= 2, `stats seen: ${JSON.stringify(seen)}`);
    assert.ok(seen.every((text) => !/\b0 fps|\b0 kbit/.test(text)), `never "0 fps": ${JSON.stringify(seen)}`);
    await context.close();
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

  test("Type clipboard types the text as keys; the remote clipboard reaches this computer only when asked", async () => {
    const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
    const page = await signedIn(context);
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    await page.evaluate(() => navigator.clipboard.writeText("hi Q"));
    const keys = xvfb.watchKeys();
    await new Promise((ok) => setTimeout(ok, 300));
    await page.getByRole("button", { name: "Type clipboard" }).click();
    await until("the typed keys", () => keys.seen.filter((k) => k.type === "KeyPress").length >= 5);
    keys.stop();
    // X keycodes: h=43, i=31, space=65, Shift_L=50, q=24.
    assert.deepEqual(keys.seen.filter((k) => k.type === "KeyPress").map((k) => k.keycode).slice(0, 5), [43, 31, 65, 50, 24]);

    const sync = page.getByLabel("Remote clipboard → here");
    assert.equal(await sync.isChecked(), false, "off by default");
    await page.evaluate(() => navigator.clipboard.writeText("technician's own"));
    xvfb.setClipboard("from the remote 1");
    await until("the remote clipboard change", () => page.evaluate(() => window.reachViewer.lastClipboard === "from the remote 1"));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "technician's own", "not overwritten");
    await sync.check();
    xvfb.setClipboard("from the remote 2");
    await until("the synced clipboard", async () => (await page.evaluate(() => navigator.clipboard.readText())) === "from the remote 2");
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

  test("a lost connection says so and reconnects by itself after a countdown", async () => {
    const page = await signedIn(await browser.newContext());
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    await page.evaluate(() => window.reachViewer.dropConnection());
    const overlay = page.locator("#overlay");
    await overlay.waitFor();
    assert.match(await overlay.innerText(), /connection to the server was lost[\s\S]*Reconnecting in \d s/);
    assert.equal(await page.locator("#cad").isDisabled(), true, "controls are off while disconnected");
    assert.match((await page.locator("#screen-canvas").getAttribute("class")) ?? "", /dimmed/);
    await screenshot(page, "viewer-connection-lost");
    const drawn = await page.evaluate(() => window.reachViewer.framesDrawn);
    await until("the viewer to rejoin", () => page.evaluate(() => window.reachViewer.state === "live"), 15_000);
    assert.equal(await overlay.isHidden(), true);
    assert.equal(await page.locator("#cad").isDisabled(), false, "control is back");
    xvfb.fill("#30a050");
    await until("a new frame after the rejoin", () => page.evaluate((n) => window.reachViewer.framesDrawn > n, drawn));
    xvfb.fill("#204080");
    await page.close();
  });

  test("an ended session is shown as ended: a sentence, a dimmed picture, no controls, a way back", async () => {
    const other = await api(url, token, "POST", "/api/sessions", { machine_id: machineId, access: "view_only" });
    const page = await signedIn(await browser.newContext());
    await page.goto(`${url}/viewer.html?codec=raw#${other.id}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    await api(url, token, "DELETE", `/api/sessions/${other.id}`);
    const overlay = page.locator("#overlay");
    await overlay.waitFor();
    assert.match(await overlay.innerText(), /The session was ended\./);
    assert.doesNotMatch(await page.locator("body").innerText(), /ended_by_user|\(\d{4}\)/, "no raw codes");
    assert.equal(await page.locator("#reconnect").isHidden(), true, "an ended session is not retried");
    assert.equal(await page.getByRole("link", { name: "Back to sessions" }).count(), 1);
    assert.match((await page.locator("#screen-canvas").getAttribute("class")) ?? "", /dimmed/);
    await screenshot(page, "viewer-ended");
    await page.close();
  });

  /** A signed-in phone: 390×844, touch, mobile viewport. */
  async function phone() {
    return signedIn(await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true }));
  }

  test("on a phone (390×844) every console page fits the width, the menu opens, and Join and End are in reach", async () => {
    const page = await phone();
    const routes = [["#/machines", "Machines"], [`#/machine/${machineId}`, "demo-desktop"], ["#/sessions", "Sessions"],
      ["#/codes", "Support codes"], ["#/users", "Users"], ["#/audit", "Audit log"], ["#/password", "Change password"]];
    for (const [route, heading] of routes) {
      await page.goto(`${url}/${route}`);
      await page.getByRole("heading", { name: heading, exact: true }).waitFor();
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= PHONE.width, `${route} is ${width} px wide`);
    }
    await page.goto(`${url}/#/machines`);
    await page.getByRole("heading", { name: "Machines" }).waitFor();
    const nav = page.getByRole("navigation", { name: "Main" });
    assert.equal(await nav.isVisible(), false, "the navigation is folded");
    await page.getByRole("button", { name: "Menu" }).click();
    await nav.getByRole("link", { name: "Sessions" }).click();
    await page.getByRole("heading", { name: "Sessions" }).waitFor();
    const open = page.getByRole("table", { name: "Open sessions" });
    for (const control of [open.getByRole("link", { name: /^Join/ }).first(), open.getByRole("button", { name: /^End/ }).first()]) {
      const box = await control.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `in reach: ${JSON.stringify(box)}`);
    }
    await screenshot(page, "console-sessions-demo");
    await page.context().close();
  });

  test("on a phone the viewer works by touch: a tap clicks, a pinch zooms (and taps still land right), the key field types", async () => {
    const page = await phone();
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    await until("control", () => page.evaluate(() => window.reachViewer.access === "control"));
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `the viewer is ${width} px wide`);
    const pointerNear = (x, y, slack) => until(`the pointer at (${x}, ${y})`, () => {
      const p = xvfb.pointer();
      return Math.abs(p.x - x) <= slack && Math.abs(p.y - y) <= slack;
    });
    let target = await pagePoint(page, 400, 300);
    await page.touchscreen.tap(target.x, target.y);
    await pointerNear(400, 300, 3);

    // Two fingers spread apart around the picture's centre.
    const cdp = await page.context().newCDPSession(page);
    const mid = await pagePoint(page, 400, 300);
    const fingers = (d) => [{ x: mid.x - d, y: mid.y, id: 1 }, { x: mid.x + d, y: mid.y, id: 2 }];
    await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: fingers(20) });
    for (const d of [40, 60, 80, 100]) await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: fingers(d) });
    await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    const scale = await page.evaluate(() => new DOMMatrix(getComputedStyle(document.getElementById("screen-canvas")).transform).a);
    assert.ok(scale > 2, `zoomed ${scale}×`);
    target = await pagePoint(page, 380, 290);
    await page.touchscreen.tap(target.x, target.y);
    await pointerNear(380, 290, 2);

    const keys = xvfb.watchKeys();
    await new Promise((ok) => setTimeout(ok, 300));
    await page.getByRole("textbox", { name: "Type on the remote machine" }).pressSequentially("ab");
    await page.keyboard.press("Enter");
    await until("the typed keys", () => keys.seen.filter((k) => k.type === "KeyPress").length >= 3);
    keys.stop();
    // X keycodes: a=38, b=56, Return=36.
    assert.deepEqual(keys.seen.filter((k) => k.type === "KeyPress").map((k) => k.keycode).slice(0, 3), [38, 56, 36]);
    assert.equal(await page.locator("#keys").inputValue(), "", "the field stays empty");
    await screenshot(page, "viewer-phone-zoomed");
    await page.getByRole("button", { name: "Fit" }).click();
    await page.context().close();
  });

  test("the USB panel says why a session has no USB, opens one with USB when asked, and then gives the commands for its devices", async () => {
    const page = await signedIn(await browser.newContext());
    await page.goto(`${url}/viewer.html?codec=raw#${sessionId}`);
    await until("a first frame", () => page.evaluate(() => window.reachViewer.framesDrawn > 0));
    const panel = page.getByRole("complementary", { name: "USB devices" });
    assert.equal(await panel.isVisible(), false);
    await page.getByRole("button", { name: "No USB" }).click();
    await panel.waitFor();
    assert.match(await panel.innerText(), /USB is not available: the session was opened without USB/);
    assert.equal(await page.locator("#usb-commands").count(), 0, "no commands are offered when USB is not available");
    await screenshot(page, "viewer-usb-panel");
    await panel.getByRole("button", { name: "Open a session with USB" }).click();
    await until("the viewer on a new session", () =>
      // The old page changes its hash before it reloads: wait for the new page's own grant.
      page.evaluate((old) => location.hash !== `#${old}` && window.reachViewer?.usb === "available", sessionId).catch(() => false));
    const usbSession = decodeURIComponent(new URL(page.url()).hash.slice(1));
    const session = await api(url, token, "GET", `/api/sessions/${usbSession}`);
    assert.equal(session.usb, true, "the new session asked for USB");
    assert.equal(await page.evaluate(() => window.reachViewer.usb), "available");
    await page.getByRole("button", { name: "USB available" }).click();
    await panel.waitFor();
    const text = await panel.innerText();
    assert.match(text, /USB may be used in this session/);
    assert.match(text, new RegExp(`reach login --server ${url} --user admin`));
    assert.match(text, new RegExp(`reach usb remote list --session ${usbSession}`));
    await screenshot(page, "viewer-usb-panel-available");
    await api(url, token, "DELETE", `/api/sessions/${usbSession}`);
    await page.context().close();
  });

  test("a live update of the machine list keeps the technician's place: the search field keeps focus and what was typed", async () => {
    const page = await signedIn(await browser.newContext());
    await page.goto(`${url}/#/machines`);
    await page.getByRole("heading", { name: "Machines" }).waitFor();
    const field = page.getByRole("searchbox", { name: "Search" });
    await field.click();
    await field.pressSequentially("dem");
    await page.evaluate(() => (window.oldTable = document.querySelector("table")));
    const other = await api(url, token, "POST", "/api/sessions", { machine_id: machineId, access: "view_only" });
    try {
      await until("the list redrawn by the session_started event", () =>
        page.evaluate(() => document.querySelector("table") !== null && document.querySelector("table") !== window.oldTable));
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("type")), "search", "focus stays in the field");
      await page.keyboard.type("o");
      assert.equal(await field.inputValue(), "demo", "typing goes on where it was");
    } finally {
      await api(url, token, "DELETE", `/api/sessions/${other.id}`);
    }
    await page.context().close();
  });
});
