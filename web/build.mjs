// Bundles the console and the viewer into web/dist, which the `reach-web` crate embeds in the
// reach binary. Run by `npm run build` (scripts/setup.sh does it) and by reach-web's build.rs.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(here, "static"), out, { recursive: true });

await build({
  entryPoints: {
    console: join(here, "src/console/main.ts"),
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
