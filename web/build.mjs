// Bundles the console and the viewer into web/dist, which the `reach-web` crate embeds in the
// reach binary. Run by `npm run build` (scripts/setup.sh does it) and by reach-web's build.rs.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

// Protocol types are generated from the .proto files, never written twice.
export function generateProtocol() {
  const gen = join(here, "src/gen");
  mkdirSync(gen, { recursive: true });
  const proto = join(here, "../crates/reach-proto/proto/reach/v1/envelope.proto");
  const bin = join(here, "node_modules/.bin");
  execFileSync(join(bin, "pbjs"), ["-t", "static-module", "-w", "es6", "--no-create", "--no-verify",
    "--no-convert", "--no-delimited", "--force-number", "-o", join(gen, "reach.js"), proto]);
  execFileSync(join(bin, "pbts"), ["-o", join(gen, "reach.d.ts"), join(gen, "reach.js")]);
}

if (process.argv.includes("--gen-only")) {
  generateProtocol();
  process.exit(0);
}
generateProtocol();
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(here, "static"), out, { recursive: true });

await build({
  entryPoints: {
    console: join(here, "src/console/main.ts"),
    viewer: join(here, "src/viewer/main.ts"),
  },
  outdir: out,
  bundle: true,
  format: "esm",
  target: ["chrome120", "firefox120"],
  minify: true,
  sourcemap: false,
  logLevel: "warning",
});
console.log(`web: bundled into ${out}`);
