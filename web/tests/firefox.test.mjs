// The console and the viewer in Debian's Firefox ESR (headless, through geckodriver): the same
// real `reach demo` on a private Xvfb as the Chromium tests.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, spawnReach, until, waitHealthy } from "./support/reach.mjs";
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

  before(async () => {
    assert.ok(firefoxAvailable(), `${FIREFOX} or ${GECKODRIVER} missing: run scripts/setup.sh`);
    xvfb = await startXvfb();
    xvfb.fill("#8040c0");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display], { REACH_ADMIN_PASSWORD: PASSWORD });
    await waitHealthy(`${url}/healthz`, demo);
    const token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
    const machine = await until("the demo agent online", async () =>
      (await api(url, token, "GET", "/api/machines")).find((m) => m.online));
    sessionId = (await api(url, token, "POST", "/api/sessions", { machine_id: machine.id })).id;
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
});
