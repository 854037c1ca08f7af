// The provider's tenants page in real headless Chromium against a real `reach server`: the owner
// creates a tenant, its admin signs in to it (organisation field), the owner suspends it (the
// admin's console is signed out and cannot sign in again), resumes it, and deletes it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, logIn, screenshot } from "./support/browser.mjs";
import { startServer } from "./support/reach.mjs";

describe("tenants", () => {
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

  async function signInTo(page, organisation, username, password) {
    await page.goto(server.url);
    await page.getByLabel("User name").fill(username);
    await page.getByLabel("Password").fill(password);
    await page.getByLabel(/^Organisation/).fill(organisation);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  test("the owner creates a tenant whose admin signs in to it; suspending signs that admin out and keeps them out; resumed, then deleted", async () => {
    const owner = await browser.newPage();
    await logIn(owner, server.url, "admin", server.password);
    await owner.getByRole("link", { name: "Tenants" }).click();
    const form = owner.getByRole("form", { name: "Create tenant" });
    await form.getByLabel("Tenant name").fill("acme");
    await form.getByLabel("First admin's user name").fill("boss");
    await form.getByLabel("First admin's password").fill("boss password 1");
    await form.getByRole("button", { name: "Create tenant" }).click();
    const row = owner.getByRole("row", { name: /acme/ });
    await row.getByRole("button", { name: "Suspend acme" }).waitFor();
    assert.match(await row.innerText(), /active/);
    assert.match(await owner.getByRole("row", { name: /default/ }).innerText(), /\(yours\)/);
    await screenshot(owner, "console-tenants");

    // The tenant's admin signs in to their organisation and has no Tenants section.
    const boss = await browser.newPage();
    await signInTo(boss, "acme", "boss", "boss password 1");
    await boss.getByRole("heading", { name: "Machines" }).waitFor();
    const nav = boss.getByRole("navigation", { name: "Main" });
    assert.equal(await nav.getByRole("link", { name: "Tenants" }).count(), 0);

    owner.once("dialog", (dialog) => void dialog.accept());
    await row.getByRole("button", { name: "Suspend acme" }).click();
    await row.getByRole("button", { name: "Resume acme" }).waitFor();
    assert.match(await row.innerText(), /suspended/);
    // The admin's next request fails: back at the sign-in form, and signing in is refused.
    await boss.reload();
    await boss.getByRole("heading", { name: "Sign in" }).waitFor();
    await signInTo(boss, "acme", "boss", "boss password 1");
    const error = boss.getByRole("form", { name: "Sign in" }).getByRole("alert");
    await error.waitFor();
    assert.match(await error.innerText(), /suspended/);
    await screenshot(boss, "console-login-suspended");

    await row.getByRole("button", { name: "Resume acme" }).click();
    await row.getByRole("button", { name: "Suspend acme" }).waitFor();
    owner.once("dialog", (dialog) => void dialog.accept());
    await row.getByRole("button", { name: "Suspend acme" }).click();
    owner.once("dialog", (dialog) => void dialog.accept());
    await row.getByRole("button", { name: "Delete acme" }).click();
    await owner.getByText("Deleted acme.").waitFor();
    await owner.getByRole("row", { name: /acme/ }).waitFor({ state: "detached" });
    assert.equal(await owner.getByRole("row", { name: /default/ }).count(), 1);
    await boss.close();
    await owner.close();
  });
});
