import { h, field, table } from "../../ui/dom";
import { badge, timeAgo } from "../../ui/words";
import { query } from "../../net/api";
import { attempt, type Ctx, type Page } from "../context";
import { machineDetail, machineName, type Machine } from "../names";
import { can, listOf } from "../session";

export type { Machine } from "../names";

/** The name cell: a link to the machine, with its host name or origin below. */
export function nameCell(m: Machine, link = true): HTMLElement {
  const name = machineName(m);
  const detail = machineDetail(m);
  return h(
    "span",
    { class: "stack" },
    link ? h("a", { href: `#/machine/${m.id}` }, name) : h("strong", {}, name),
    detail ? h("small", { class: "muted" }, detail) : "",
  );
}

export function onlineBadge(m: Machine): HTMLElement {
  return m.online ? badge("online", "good") : badge("offline", "muted");
}

export const machinesPage: Page = async (ctx, param) => {
  const search = h("input", { type: "search", value: decodeURIComponent(param ?? ""), placeholder: "name, organization, site or tag" });
  const machines = listOf<Machine>(await ctx.api.get(`/api/machines${query({ q: search.value })}`));
  const form = h("form", { role: "search", class: "inline", "aria-label": "Search machines" }, field("Search", search), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go(`#/machines/${encodeURIComponent(search.value)}`);
  });
  const rows = machines.map((m) => [
    nameCell(m),
    onlineBadge(m),
    m.organization || "—",
    m.site || "—",
    (m.tags ?? []).join(", ") || "—",
    timeAgo(m.last_seen_at_ms),
  ]);
  const list = rows.length
    ? table(machines.length === 1 ? "1 machine" : `${machines.length} machines`, ["Name", "State", "Organization", "Site", "Tags", "Last seen"], rows)
    : h("p", { class: "empty" }, search.value ? `No machine matches “${search.value}”.` : "No machines yet. Add one below, or create a support code for attended help.");
  ctx.layout.show("Machines", form, list, can(ctx.me, "manage_machines") ? newMachineForm(ctx) : "");
};

function newMachineForm(ctx: Ctx): HTMLElement {
  const name = h("input", { required: true });
  const form = h("form", { class: "card", "aria-label": "Add machine" }, h("h2", {}, "Add a machine"), field("Machine name", name), h("button", { type: "submit", class: "primary" }, "Add machine"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      const created = await ctx.api.post<Machine>("/api/machines", { name: name.value });
      ctx.go(`#/machine/${created.id}`);
    }, form);
  });
  return form;
}
