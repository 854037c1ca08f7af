// Starts real `reach` processes for browser tests: a server on a free loopback port with a fresh
// data directory, and stops them when the test ends.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REACH_BIN = process.env.REACH_BIN ?? resolve(import.meta.dirname, "../../../target/debug/reach");
export const ARTIFACTS = resolve(import.meta.dirname, "../../../artifacts");

export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** Spawns `reach ARGS`, collecting its output for failure messages. */
export function spawnReach(args, env = {}) {
  if (!existsSync(REACH_BIN)) throw new Error(`${REACH_BIN} missing: run cargo build -p reach-cli first`);
  const child = spawn(REACH_BIN, args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.output = "";
  child.stdout.on("data", (chunk) => (child.output += chunk));
  child.stderr.on("data", (chunk) => (child.output += chunk));
  return child;
}

/** Polls `url` until it answers 200, or fails after `timeoutMs`. */
export async function waitHealthy(url, child, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`reach exited early (${child.exitCode}):\n${child.output}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms:\n${child.output}`);
}

/** A fresh `reach server` with a known admin password. Call `stop()` when done. */
export async function startServer({ password = "correct horse battery", extraArgs = [], env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "reach-web-test-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnReach(
    ["server", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, ...extraArgs],
    { REACH_ADMIN_PASSWORD: password, ...env },
  );
  await waitHealthy(`${url}/healthz`, child);
  return {
    url,
    password,
    dataDir,
    child,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns something truthy, or fails naming `what` after `timeoutMs`. */
export async function until(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}
