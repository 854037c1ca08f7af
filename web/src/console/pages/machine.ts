import { h, field, table } from "../../ui/dom";
import { badge, timeAgo } from "../../ui/words";
import { attempt, type Ctx, type Page } from "../context";
import { machineName, type Machine } from "../names";
import { can, listOf } from "../session";
import { onlineBadge } from "./machines";

interface AgentKey {
  id: string;
  prefix?: string;
  created_at_ms?: number;
  revoked_at_ms?: number | null;
  last_used_at_ms?: number | null;
}

interface NewKey {
  id: number | string;
  key: string;
}

export const machinePage: Page = async (ctx, id) => {
  const machine = await ctx.api.get<Machine>(`/api/machines/${id}`);
  const facts: [string, Node | string][] = [
    ["State", onlineBadge(machine)],
    ["Host name", machine.hostname || "not reported yet"],
    ["System", machine.os || "not reported yet"],
    ["Agent", machine.agent_version || "—"],
    ["Last seen", timeAgo(machine.last_seen_at_ms)],
    ["USB", machine.capabilities?.supports_usb ? "the agent can share USB devices" : "the agent shares no USB devices"],
  ];
  if (machine.attended) facts.push(["Came", badge("via a support code", "info")]);
  const sections: Node[] = [
    h("dl", { class: "facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
  ];
  if (can(ctx.me, "view")) sections.push(openSessionButton(ctx, machine));
  if (can(ctx.me, "manage_machines")) {
    sections.push(metadataForm(ctx, machine));
    sections.push(await keysSection(ctx, machine));
  }
  ctx.layout.show(machineName(machine), ...sections);
};

function openSessionButton(ctx: Ctx, machine: Machine): HTMLElement {
  const button = h("button", { type: "button", class: "primary", disabled: !machine.online }, "Open session");
  const usb = h("input", { type: "checkbox", id: "open-usb" });
  const usbChoice = can(ctx.me, "usb") ? h("label", {}, usb, " Also ask for USB devices") : "";
  const group = h("div", { class: "toolbar", role: "group", "aria-label": "Open a session" }, button, usbChoice);
  button.addEventListener("click", () =>
    attempt(ctx, async () => {
      await ctx.api.post<{ id: string | number }>("/api/sessions", { machine_id: machine.id, ...(usb.checked ? { usb: true } : {}) });
      ctx.go(`#/sessions`);
      ctx.layout.say(`Session on ${machineName(machine)} opened.`);
    }, group),
  );
  return group;
}

function metadataForm(ctx: Ctx, machine: Machine): HTMLElement {
  const name = h("input", { value: machine.name, required: true });
  const organization = h("input", { value: machine.organization ?? "" });
  const site = h("input", { value: machine.site ?? "" });
  const tags = h("input", { value: (machine.tags ?? []).join(", ") });
  const form = h(
    "form",
    { class: "card", "aria-label": "Machine details" },
    h("h2", {}, "Details"),
    field("Name", name),
    field("Organization", organization),
    field("Site", site),
    field("Tags (comma separated)", tags),
    h("button", { type: "submit", class: "primary" }, "Save details"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(ctx, async () => {
      await ctx.api.patch(`/api/machines/${machine.id}`, {
        name: name.value,
        organization: organization.value || null,
        site: site.value || null,
        tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
      });
      ctx.layout.say("Saved.");
    }, form);
  });
  return form;
}

async function keysSection(ctx: Ctx, machine: Machine): Promise<HTMLElement> {
  const shown = h("div", { id: "new-key", "aria-live": "polite" });
  const list = h("div", {}, await keyList(ctx, machine));
  const create = h("button", { type: "button" }, "Create agent key");
  create.addEventListener("click", () =>
    attempt(ctx, async () => {
      const key = await ctx.api.post<NewKey>(`/api/machines/${machine.id}/keys`);
      shown.replaceChildren(
        h("p", {}, "Copy this key now; it is shown only once:"),
        h("pre", { class: "secret" }, h("code", {}, key.key)),
        h("p", {}, "Run on the machine:"),
        h("pre", { class: "secret" }, h("code", {}, `reach agent --server ${location.origin} --key ${key.key}`)),
      );
      list.replaceChildren(await keyList(ctx, machine));
    }),
  );
  return h("section", { "aria-label": "Agent keys" }, h("h2", {}, "Agent keys"), create, shown, list);
}

/** The machine's keys (prefix, times, state, revoke), or an empty state. */
async function keyList(ctx: Ctx, machine: Machine): Promise<HTMLElement> {
  const keys = listOf<AgentKey>(await ctx.api.get(`/api/machines/${machine.id}/keys`));
  if (keys.length === 0) return h("p", { class: "empty" }, "No agent keys yet. Create one to connect this machine's agent.");
  const rows = keys.map((key) => {
    const revoke = key.revoked_at_ms ? "" : h("button", { type: "button", class: "danger" }, `Revoke ${key.prefix ?? key.id}`);
    if (revoke) revoke.addEventListener("click", () =>
      attempt(ctx, async () => {
        await ctx.api.delete(`/api/machines/${machine.id}/keys/${key.id}`);
        ctx.layout.say("Key revoked; the agent using it was disconnected.");
        await machinePage(ctx, String(machine.id));
      }),
    );
    const state = key.revoked_at_ms ? h("span", {}, badge("revoked", "bad"), " ", timeAgo(key.revoked_at_ms)) : badge("active", "good");
    return [h("code", {}, key.prefix ?? key.id), timeAgo(key.created_at_ms), key.last_used_at_ms ? timeAgo(key.last_used_at_ms) : "never", state, revoke];
  });
  return table("Agent keys", ["Key", "Created", "Last used", "State", "Actions"], rows);
}
