import { h, field, table } from "../../ui/dom";
import { badge, timeAgo } from "../../ui/words";
import { attempt, type Ctx, type Page } from "../context";
import { listOf } from "../session";

interface User {
  id: number | string;
  username: string;
  role: string;
  disabled?: boolean;
  created_at_ms?: number;
}

const ROLES = ["admin", "technician", "viewer"];

function roleSelect(current: string): HTMLSelectElement {
  return h("select", {}, ...ROLES.map((role) => h("option", { value: role, selected: role === current }, role)));
}

function userRow(ctx: Ctx, user: User): (Node | string)[] {
  const self = ctx.me !== null && ctx.me.user_id === String(user.id);
  const state = user.disabled ? badge("disabled", "bad") : badge("active", "good");
  if (user.role === "owner") {
    // The provider's account: its role is not given or changed here (the server refuses).
    return [user.username, badge("owner (provider)", "info"), state, timeAgo(user.created_at_ms), self ? "(you)" : "—"];
  }
  const role = roleSelect(user.role);
  role.setAttribute("aria-label", `Role of ${user.username}`);
  role.addEventListener("change", () =>
    attempt(ctx, async () => {
      await ctx.api.patch(`/api/users/${user.id}`, { role: role.value });
      ctx.layout.say(`${user.username} is now ${role.value}.`);
    }),
  );
  const remove = h("button", { type: "button", class: "danger" }, `Delete ${user.username}`);
  remove.addEventListener("click", () =>
    attempt(ctx, async () => {
      if (!confirm(`Delete user ${user.username}?`)) return;
      await ctx.api.delete(`/api/users/${user.id}`);
      ctx.layout.say(`Deleted ${user.username}.`);
      await usersPage(ctx, undefined);
    }),
  );
  return [user.username, role, state, timeAgo(user.created_at_ms), self ? "(you)" : remove];
}

export const usersPage: Page = async (ctx) => {
  const users = listOf<User>(await ctx.api.get("/api/users"));
  const username = h("input", { required: true, autocomplete: "off" });
  const password = h("input", { type: "password", required: true, autocomplete: "new-password" });
  const role = roleSelect("technician");
  const form = h(
    "form",
    { class: "card", "aria-label": "Create user" },
    h("h2", {}, "New user"),
    field("User name", username),
    field("Initial password", password),
    field("Role", role),
    h("button", { type: "submit", class: "primary" }, "Create user"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      await ctx.api.post("/api/users", { username: username.value, password: password.value, role: role.value });
      ctx.layout.say(`Created ${username.value}.`);
      await usersPage(ctx, undefined);
    }, form);
  });
  const rows = users.map((user) => userRow(ctx, user));
  ctx.layout.show("Users", table("Users of this tenant", ["Name", "Role", "State", "Created", "Actions"], rows), form);
};
