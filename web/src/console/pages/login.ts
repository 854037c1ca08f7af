import { h, field } from "../../ui/dom";
import { takeNext } from "../../net/api";
import { attempt, type Page } from "../context";

interface LoginAnswer {
  token: string;
}

export const loginPage: Page = async (ctx) => {
  // The tenant: blank for the provider's own (`default`); other tenants' users give its name.
  const organisation = h("input", { name: "organisation", autocomplete: "organization", placeholder: "default" });
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { class: "card", "aria-label": "Sign in" },
    field("User name", username),
    field("Password", password),
    field("Organisation (leave blank for the default)", organisation),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      const tenant = organisation.value.trim();
      const answer = await ctx.api.post<LoginAnswer>("/api/auth/login", {
        username: username.value,
        password: password.value,
        ...(tenant ? { tenant } : {}),
      });
      ctx.api.token = answer.token;
      password.value = "";
      ctx.layout.say("Signed in.");
      const next = takeNext();
      if (next) return location.assign(next);
      ctx.go("#/machines");
      await ctx.refresh();
    }, form);
  });
  ctx.layout.show("Sign in", form);
  username.focus();
};

export const passwordPage: Page = async (ctx) => {
  const old = h("input", { type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Change password" },
    field("Current password", old),
    field("New password", next),
    h("button", { type: "submit", class: "primary" }, "Change password"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      await ctx.api.post("/api/auth/change-password", {
        old_password: old.value,
        new_password: next.value,
      });
      old.value = "";
      next.value = "";
      ctx.layout.say("Password changed. Your other sessions were signed out.");
    }, form);
  });
  ctx.layout.show("Change password", form);
};
