// A minimal W3C WebDriver client (fetch only) for browsers Playwright cannot drive here:
// Debian's firefox-esr through geckodriver (built from crates.io by scripts/setup.sh).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./reach.mjs";

export const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";
/** geckodriver from $GECKODRIVER, cargo's bin directory (scripts/setup.sh installs it there), or PATH. */
export const GECKODRIVER =
  process.env.GECKODRIVER ??
  [join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin/geckodriver"),
    ...(process.env.PATH ?? "").split(":").map((dir) => join(dir, "geckodriver"))].find(existsSync) ??
  "geckodriver";

export function firefoxAvailable() {
  return existsSync(FIREFOX) && existsSync(GECKODRIVER);
}

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class FirefoxSession {
  static async start() {
    const port = await freePort();
    const driver = spawn(GECKODRIVER, ["--port", String(port), "--host", "127.0.0.1"], { stdio: "ignore" });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      try {
        const status = await (await fetch(`${base}/status`)).json();
        if (status.value?.ready) break;
      } catch {
        // not listening yet
      }
      await new Promise((ok) => setTimeout(ok, 100));
    }
    const profile = mkdtempSync(join(tmpdir(), "reach-firefox-"));
    const created = await call(base, "POST", "/session", {
      capabilities: {
        alwaysMatch: {
          browserName: "firefox",
          "moz:firefoxOptions": {
            binary: FIREFOX,
            args: ["-headless", "-profile", profile],
            prefs: { "network.proxy.type": 0, "app.update.enabled": false, "browser.shell.checkDefaultBrowser": false },
          },
        },
      },
    });
    return new FirefoxSession(driver, base, created.sessionId);
  }

  constructor(driver, base, id) {
    this.driver = driver;
    this.url = `${base}/session/${id}`;
  }

  goto(url) {
    return call(this.url, "POST", "/url", { url });
  }
  async find(css) {
    const found = await call(this.url, "POST", "/element", { using: "css selector", value: css });
    return found[ELEMENT];
  }
  async type(css, text) {
    await call(this.url, "POST", `/element/${await this.find(css)}/value`, { text });
  }
  async click(css) {
    await call(this.url, "POST", `/element/${await this.find(css)}/click`, {});
  }
  execute(script, ...args) {
    return call(this.url, "POST", "/execute/sync", { script, args });
  }
  /** Polls a script until it returns something truthy. */
  async until(what, script, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.execute(script).catch(() => null);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`firefox: timed out waiting for ${what}`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
  async quit() {
    await call(this.url, "DELETE", "", undefined).catch(() => undefined);
    this.driver.kill();
  }
}

async function call(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`webdriver ${method} ${path}: ${JSON.stringify(answer.value)}`);
  return answer.value;
}
