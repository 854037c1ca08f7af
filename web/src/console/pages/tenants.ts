// Tenants (the provider's owner only, permission manage_tenants): create a tenant with its first
// admin, suspend or resume it, delete a suspended one.
import { h, field, table } from "../../ui/dom";
import { badge, timeAgo } from "../../ui/words";
import { attempt, type Ctx, type Page } from "../context";
import { listOf } from "../session";

interface Tenant {
  id: string;
  name: string;
  created_at_ms?: number;
  suspended_at_ms?: number | null;
  users?: number;
  machines?: number;
}

function tenantRow(ctx: Ctx, tenant: Tenant): (Node | string)[] {
  const own = ctx.me !== null && ctx.me.tenant_id === tenant.id;
  const suspended = tenant.suspended_at_ms != null;
  const state = suspended ? badge(`suspended ${timeAgo(tenant.suspended_at_ms ?? undefined)}`, "bad") : badge("active", "good");
  const count = (n: number | undefined, what: string): string => `${n ?? 0} ${what}${n === 1 ? "" : "s"}`;
  const size = `${count(tenant.users, "user")} · ${count(tenant.machines, "machine")}`;
  if (own) return [tenant.name, state, size, timeAgo(tenant.created_at_ms), "(yours)"];
  const toggle = h("button", { type: "button", class: suspended ? "" : "danger" }, suspended ? `Resume ${tenant.name}` : `Suspend ${tenant.name}`);
  toggle.addEventListener("click", () =>
    attempt(ctx, async () => {
      const question = `Suspend ${tenant.name}? Its users are signed out, its sessions end and its agents disconnect.`;
      if (!suspended && !confirm(question)) return;
      await ctx.api.patch(`/api/tenants/${tenant.id}`, { suspended: !suspended });
      ctx.layout.say(suspended ? `${tenant.name} is active again.` : `${tenant.name} is suspended.`);
      await tenantsPage(ctx, undefined);
    }),
  );
  const actions: Node[] = [toggle];
  if (suspended) {
    const remove = h("button", { type: "button", class: "danger" }, `Delete ${tenant.name}`);
    remove.addEventListener("click", () =>
      attempt(ctx, async () => {
        if (!confirm(`Delete ${tenant.name} with its users, machines and sessions? Its audit log is kept.`)) return;
        await ctx.api.delete(`/api/tenants/${tenant.id}`);
        ctx.layout.say(`Deleted ${tenant.name}.`);
        await tenantsPage(ctx, undefined);
      }),
    );
    actions.push(remove);
  }
  return [tenant.name, state, size, timeAgo(tenant.created_at_ms), h("span", { class: "actions" }, ...actions)];
}

export const tenantsPage: Page = async (ctx) => {
  const tenants = listOf<Tenant>(await ctx.api.get("/api/tenants"));
  const name = h("input", { required: true, autocomplete: "off", pattern: "[A-Za-z0-9._-]{1,64}" });
  const admin = h("input", { required: true, autocomplete: "off" });
  const password = h("input", { type: "password", required: true, autocomplete: "new-password", minlength: "8" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Create tenant" },
    h("h2", {}, "New tenant"),
    h("p", { class: "hint" }, "Its users sign in with the tenant's name; the first admin manages the rest."),
    field("Tenant name", name),
    field("First admin's user name", admin),
    field("First admin's password", password),
    h("button", { type: "submit", class: "primary" }, "Create tenant"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      await ctx.api.post("/api/tenants", { name: name.value, admin_username: admin.value, admin_password: password.value });
      ctx.layout.say(`Created ${name.value}; ${admin.value} can sign in now.`);
      await tenantsPage(ctx, undefined);
    }, form);
  });
  const rows = tenants.map((tenant) => tenantRow(ctx, tenant));
  ctx.layout.show("Tenants", table("Tenants of this provider", ["Name", "State", "Size", "Created", "Actions"], rows), form);
};
