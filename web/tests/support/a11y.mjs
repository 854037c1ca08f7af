// Accessibility check with axe-core (from npm), injected into the page under test. Fails on
// serious or critical violations; minor and moderate ones are printed, not fatal.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Runs axe-core on the page as it is now; throws naming each serious or critical violation. */
export async function checkA11y(page, label) {
  // Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays in force
  // for the page itself and no script tag is added to it.
  const injected = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!injected) await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const describe = (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")})`;
  const fatal = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const other = results.violations.filter((v) => !fatal.includes(v));
  if (other.length && process.env.A11Y_VERBOSE) console.log(`a11y ${label}: ${other.map(describe).join("; ")}`);
  if (fatal.length) throw new Error(`accessibility (${label}): ${fatal.map(describe).join("; ")}`);
  return results.violations;
}
