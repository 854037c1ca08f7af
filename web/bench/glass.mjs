// Glass-to-glass latency in real headless Chromium: a painter changes a typing-sized rectangle
// on a private Xvfb and reports when the X server had it; the viewer page reports when that
// pixel was drawn in its canvas. Prints p50/p95 over N changes for raw and H.264.
//
// Run: cargo build --release -p reach-cli && REACH_BIN=target/release/reach node web/bench/glass.mjs [N]
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { launch, logIn } from "../tests/support/browser.mjs";
import { freePort, spawnReach, waitHealthy, REACH_BIN } from "../tests/support/reach.mjs";
import { startXvfb } from "../tests/support/xvfb.mjs";

const CHANGES = Number(process.argv[2] ?? 100);
const PASSWORD = "glass bench password";

async function api(url, token, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * q))];
}

const xvfb = await startXvfb(1280, 800);
xvfb.fill("#202020");
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const demo = spawnReach(["demo", "--listen", `127.0.0.1:${port}`, "--display", xvfb.display], { REACH_ADMIN_PASSWORD: PASSWORD });
const painter = spawn(REACH_BIN, ["bench", "x-fill", "--display", xvfb.display], { stdio: ["pipe", "pipe", "inherit"] });
const replies = createInterface({ input: painter.stdout });
const nextReply = () => new Promise((ok) => replies.once("line", ok));
const browser = await launch();
try {
  await waitHealthy(`${url}/healthz`, demo);
  const token = (await api(url, null, "POST", "/api/auth/login", { username: "admin", password: PASSWORD })).token;
  let session;
  for (let i = 0; i < 100 && !session; i++) {
    const machines = await api(url, token, "GET", "/api/machines");
    if (machines[0]?.online) session = await api(url, token, "POST", "/api/sessions", { machine_id: machines[0].id });
    else await new Promise((ok) => setTimeout(ok, 100));
  }
  console.log(`Glass-to-glass (X server has the change → pixel drawn in the page's canvas), 1280×800, loopback, ${CHANGES} changes of 16×24 px`);
  for (const codec of ["raw", "h264"]) {
    const page = await browser.newPage();
    await logIn(page, url, "admin", PASSWORD);
    await page.goto(`${url}/viewer.html?codec=${codec}#${session.id}`);
    await page.waitForFunction(() => window.reachViewer.framesDrawn > 0, null, { timeout: 20_000 });
    await new Promise((ok) => setTimeout(ok, 500));
    const samples = [];
    for (let i = 0; i < CHANGES; i++) {
      const x = 40 + (i % 60) * 18;
      const y = 60 + Math.floor(i / 60) * 30;
      const rgb = i % 2 === 0 ? [0xe0, 0xc0, 0x20] : [0x20, 0x40, 0xa0];
      const tolerance = codec === "raw" ? 0 : 40;
      await page.evaluate((watch) => (window.reachViewer.watch = watch), { x: x + 8, y: y + 12, rgb, tolerance, seenAt: null });
      const hex = rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
      const reply = nextReply();
      painter.stdin.write(`${x} ${y} 16 24 ${hex}\n`);
      const changedAt = Number(await reply) / 1000;
      await page.waitForFunction(() => window.reachViewer.watch.seenAt !== null, null, { timeout: 5_000, polling: 2 });
      const seenAt = await page.evaluate(() => window.reachViewer.watch.seenAt);
      samples.push(seenAt - changedAt);
      await new Promise((ok) => setTimeout(ok, 30));
    }
    samples.sort((a, b) => a - b);
    console.log(`  ${codec.padEnd(5)} p50 ${percentile(samples, 0.5).toFixed(2)} ms   p95 ${percentile(samples, 0.95).toFixed(2)} ms   (${samples.length} samples)`);
    await page.close();
  }
} finally {
  painter.stdin.end();
  await browser.close();
  demo.kill("SIGTERM");
  xvfb.stop();
}
