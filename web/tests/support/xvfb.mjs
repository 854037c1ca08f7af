// A private Xvfb for one test file, plus helpers that draw on it and watch it.
import { spawn, execFileSync } from "node:child_process";

export async function startXvfb(width = 640, height = 480) {
  const child = spawn("Xvfb", ["-displayfd", "1", "-screen", "0", `${width}x${height}x24`, "-nolisten", "tcp", "-noreset"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const display = await new Promise((ok, fail) => {
    let text = "";
    child.once("error", (error) => fail(new Error(`cannot start Xvfb (${error.message}): run scripts/setup.sh`)));
    child.once("exit", (code) => fail(new Error(`Xvfb exited (${code}) before reporting a display`)));
    child.stdout.on("data", (chunk) => {
      text += chunk;
      if (text.includes("\n")) ok(`:${text.trim()}`);
    });
  });
  return {
    display,
    width,
    height,
    /** Makes `text` the X CLIPBOARD (xclip serves it once, to the agent's watcher). */
    setClipboard(text) {
      const child = spawn("xclip", ["-display", display, "-selection", "clipboard", "-loops", "1"], { stdio: ["pipe", "ignore", "ignore"] });
      child.stdin.end(text);
      return child;
    },
    /** Paints the root window one colour (`#rrggbb`). */
    fill(color) {
      execFileSync("xsetroot", ["-display", display, "-solid", color]);
    },
    pointer() {
      const out = execFileSync("xdotool", ["getmouselocation"], { env: { ...process.env, DISPLAY: display } }).toString();
      const [, x, y] = out.match(/x:(\d+) y:(\d+)/) ?? [];
      return { x: Number(x), y: Number(y) };
    },
    /** Runs `xev` on the root window and collects the key events it reports. */
    watchKeys() {
      const xev = spawn("xev", ["-display", display, "-root", "-event", "keyboard"], { stdio: ["ignore", "pipe", "ignore"] });
      const seen = [];
      let buffer = "";
      xev.stdout.on("data", (chunk) => {
        buffer += chunk;
        // xev separates events with a blank line: parse each complete block once.
        const blocks = buffer.split("\n\n");
        buffer = blocks.pop() ?? "";
        for (const block of blocks) {
          const match = block.match(/(KeyPress|KeyRelease) event[^]*?keycode (\d+) \(keysym 0x[0-9a-f]+, (\w+)\)/);
          if (match) seen.push({ type: match[1], keycode: Number(match[2]), keysym: match[3] });
        }
      });
      return { seen, stop: () => xev.kill() };
    },
    stop() {
      child.kill();
    },
  };
}
