// The web console in real headless Chromium against a real `reach server` (fresh SQLite).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, logIn, screenshot } from "./support/browser.mjs";
import { startServer } from "./support/reach.mjs";

describe("web console", () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a wrong password shows its error inside the login form, not in a toast far from it", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.getByLabel("User name").fill("admin");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    const form = page.getByRole("form", { name: "Sign in" });
    const error = form.getByRole("alert");
    await error.waitFor();
    assert.match(await error.innerText(), /invalid|incorrect|wrong/i);
    assert.equal(await page.locator("#status.error").count(), 0, "no global error toast for a form's error");
    assert.equal(await page.getByRole("heading", { name: "Sign in" }).count(), 1);
    await screenshot(page, "console-login-error");
    await page.close();
  });

  test("an admin logs in and sees every console section", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    const nav = page.getByRole("navigation", { name: "Main" });
    for (const section of ["Machines", "Sessions", "Support codes", "Users", "Audit log"]) {
      assert.equal(await nav.getByRole("link", { name: section }).count(), 1, section);
    }
    await screenshot(page, "console-machines");
    await page.close();
  });

  test("a support code is made with a chosen scope and lifetime, listed and revoked; your own user row has no delete button; a refused new user's error is inside its form", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    await page.getByRole("link", { name: "Support codes" }).click();
    const codeForm = page.getByRole("form", { name: "New support code" });
    await codeForm.getByLabel("Access").selectOption("view_only");
    await codeForm.getByLabel("Valid for").selectOption("3600");
    await codeForm.getByRole("button", { name: "Create support code" }).click();
    await page.locator("#support-code").waitFor();
    const expiry = await page.locator("#code-expiry").innerText();
    assert.doesNotMatch(expiry, /—/, "the expiry is shown");
    assert.match(expiry, /view only/);
    assert.match(await page.locator("#code-command").innerText(), /^reach agent --server http:\/\/.+ --code [A-Z0-9-]{11}$/);
    await page.locator("#active-codes").getByRole("button", { name: /^Revoke/ }).waitFor();
    await screenshot(page, "console-support-codes");
    page.once("dialog", (dialog) => void dialog.accept());
    await page.locator("#active-codes").getByRole("button", { name: /^Revoke/ }).click();
    await page.getByText("No unused codes.").waitFor();
    // (One sign-in for both checks: logins are limited to 8 a minute per IP.)
    await page.getByRole("link", { name: "Users" }).click();
    await page.getByRole("cell", { name: "(you)" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Delete admin" }).count(), 0);
    // A name that is taken: the server's sentence shows inside the Create user form.
    const form = page.getByRole("form", { name: "Create user" });
    await form.getByLabel("User name").fill("admin");
    await form.getByLabel("Initial password").fill("another long password");
    await form.getByRole("button", { name: "Create user" }).click();
    const error = form.getByRole("alert");
    await error.waitFor();
    assert.match(await error.innerText(), /already exists/);
    assert.equal(await page.locator("#status.error").count(), 0, "no global error toast for a form's error");
    await screenshot(page, "console-users-form-error");
    await page.close();
  });

  test("an admin creates a user who then logs in with fewer sections", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    await page.getByRole("link", { name: "Users" }).click();
    const form = page.getByRole("form", { name: "Create user" });
    await form.getByLabel("User name").fill("vera");
    await form.getByLabel("Initial password").fill("vera's long password");
    await form.getByLabel("Role").selectOption("viewer");
    await form.getByRole("button", { name: "Create user" }).click();
    await page.getByRole("cell", { name: "vera", exact: true }).waitFor();
    await screenshot(page, "console-users");

    const other = await browser.newContext();
    const viewer = await other.newPage();
    await logIn(viewer, server.url, "vera", "vera's long password");
    const nav = viewer.getByRole("navigation", { name: "Main" });
    assert.equal(await nav.getByRole("link", { name: "Users" }).count(), 0);
    assert.equal(await nav.getByRole("link", { name: "Audit log" }).count(), 0);
    await other.close();
    await page.close();
  });

  test("the audit log lists logins and the chain verifies", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("cell", { name: "login_ok" }).first().waitFor();
    await page.getByRole("button", { name: "Verify chain" }).click();
    await page.locator("#verify-result.ok").waitFor();
    assert.match(await page.locator("#verify-result").innerText(), /verified/);
    await screenshot(page, "console-audit");
    await page.close();
  });

  test("an admin adds a machine, edits its details, finds it by tag, and issues and revokes a key", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    const add = page.getByRole("form", { name: "Add machine" });
    await add.getByLabel("Machine name").fill("front-desk-pc");
    await add.getByRole("button", { name: "Add machine" }).click();
    await page.getByRole("heading", { name: "front-desk-pc" }).waitFor();
    const details = page.getByRole("form", { name: "Machine details" });
    await details.getByLabel("Organization").fill("Acme");
    await details.getByLabel("Site").fill("Lyon");
    await details.getByLabel("Tags (comma separated)").fill("reception, windows");
    await details.getByRole("button", { name: "Save details" }).click();
    await page.locator("#status", { hasText: "Saved." }).waitFor();

    await page.getByRole("link", { name: "Machines" }).click();
    const search = page.getByRole("search", { name: "Search machines" });
    await search.getByLabel("Search").fill("reception");
    await search.getByRole("button", { name: "Search" }).click();
    await page.getByRole("table", { name: "1 machine", exact: true }).waitFor(); // the search's answer, not the list before it
    const row = page.getByRole("row").filter({ hasText: "front-desk-pc" });
    await row.waitFor();
    assert.match(await row.innerText(), /Acme[\s\S]*Lyon[\s\S]*reception/);
    await search.getByLabel("Search").fill("no-such-tag");
    await search.getByRole("button", { name: "Search" }).click();
    await page.getByText("No machine matches “no-such-tag”.").waitFor();

    await page.goto(`${server.url}/#/machines`);
    await page.getByRole("link", { name: "front-desk-pc" }).click();
    await page.getByText("No agent keys yet.").waitFor(); // the empty state
    await page.getByRole("button", { name: "Create agent key" }).click();
    await page.getByRole("row").filter({ hasText: "active" }).waitFor(); // listed at once
    const secret = await page.locator("#new-key pre.secret >> nth=0").innerText();
    assert.match(secret, /^cak_[A-Za-z0-9_-]{40,}$/);
    await screenshot(page, "console-machine-key");
    await page.reload();
    assert.equal(await page.locator("#new-key pre.secret").count(), 0, "the key is shown only once");
    const keyRow = page.getByRole("row").filter({ hasText: "active" });
    await keyRow.getByRole("button", { name: /Revoke/ }).click();
    await page.getByRole("row").filter({ hasText: "revoked" }).waitFor();
    await page.close();
  });

  test("logging out revokes the token and returns to the login form", async () => {
    const page = await browser.newPage();
    await logIn(page, server.url, "admin", server.password);
    const token = await page.evaluate(() => localStorage.getItem("reach.login_token"));
    assert.ok(token);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    const status = await page.evaluate(
      async (t) => (await fetch("/api/me", { headers: { Authorization: `Bearer ${t}` } })).status,
      token,
    );
    assert.equal(status, 401);
    await page.close();
  });
});
