import { h, field, table, when } from "../../ui/dom";
import { query } from "../../net/api";
import { attempt, type Ctx, type Page } from "../context";
import { can, listOf } from "../session";

export interface Machine {
  id: number | string;
  name: string;
  organization?: string | null;
  site?: string | null;
  tags?: string[];
  online?: boolean;
  last_seen_at_ms?: number | null;
  os?: string | null;
  agent_version?: string | null;
}

export const machinesPage: Page = async (ctx, param) => {
  const search = h("input", { type: "search", value: decodeURIComponent(param ?? ""), placeholder: "name, organization, site or tag" });
  const machines = listOf<Machine>(await ctx.api.get(`/api/machines${query({ q: search.value })}`));
  const form = h("form", { role: "search", "aria-label": "Search machines" }, field("Search", search), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go(`#/machines/${encodeURIComponent(search.value)}`);
  });
  const rows = machines.map((m) => [
    h("a", { href: `#/machine/${m.id}` }, m.name),
    h("span", { class: m.online ? "online" : "offline" }, m.online ? "online" : "offline"),
    m.organization ?? "—",
    m.site ?? "—",
    (m.tags ?? []).join(", ") || "—",
    when(m.last_seen_at_ms),
  ]);
  ctx.layout.show(
    "Machines",
    form,
    table(`${machines.length} machines`, ["Name", "State", "Organization", "Site", "Tags", "Last seen"], rows),
    can(ctx.me, "manage_machines") ? newMachineForm(ctx) : "",
  );
};

function newMachineForm(ctx: Ctx): HTMLElement {
  const name = h("input", { required: true });
  const form = h("form", { "aria-label": "Add machine" }, h("h2", {}, "Add a machine"), field("Machine name", name), h("button", { type: "submit" }, "Add machine"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      const created = await ctx.api.post<Machine>("/api/machines", { name: name.value });
      ctx.go(`#/machine/${created.id}`);
    });
  });
  return form;
}
