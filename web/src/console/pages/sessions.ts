import { h, table } from "../../ui/dom";
import { accessWords, attachedWords, badge, consentWords, endWords, kindWords, timeAgo, type AttachedClaim } from "../../ui/words";
import { attempt, type Ctx, type Page } from "../context";
import { machineName, type Machine } from "../names";
import { can, listOf } from "../session";
import { nameCell } from "./machines";

interface Session {
  id: string;
  machine_id: string;
  kind?: string;
  consent?: string;
  technician?: string;
  access?: string;
  usb?: boolean;
  viewers?: number;
  created_at_ms?: number;
  ended_at_ms?: number | null;
  end_reason?: string | null;
  usb_attached?: AttachedClaim[];
}

/** Access in words, and under it each USB claim attached to a technician's computer. */
function accessCell(s: Session): HTMLElement {
  const attached = s.usb_attached ?? [];
  return h(
    "div",
    {},
    accessWords(s.access, s.usb),
    attached.length
      ? h("ul", { class: "attached", "aria-label": "USB devices attached" }, ...attached.map((c) => h("li", {}, `${c.vendor_id}:${c.product_id} ${attachedWords(c)}`)))
      : "",
  );
}

/** Ended sessions shown before "Show all history". */
const HISTORY_SHORT = 20;

function stateOf(s: Session): HTMLElement {
  if (s.consent === "pending") return badge("waiting for the customer", "warn");
  const watching = s.viewers ?? 0;
  if (watching > 0) return badge(watching === 1 ? "live · 1 watching" : `live · ${watching} watching`, "good");
  return badge("open · nobody watching", "info");
}

function endButton(ctx: Ctx, s: Session, name: string): HTMLElement | string {
  if (!can(ctx.me, "control") && s.technician !== ctx.me?.username) return "";
  const end = h("button", { type: "button", class: "danger" }, "End");
  end.setAttribute("aria-label", `End the session on ${name}`);
  end.addEventListener("click", () =>
    attempt(ctx, async () => {
      if (!confirm(`End the session on ${name}? Everyone watching is disconnected.`)) return;
      await ctx.api.delete(`/api/sessions/${s.id}`);
      ctx.layout.say(`The session on ${name} ended.`);
      await sessionsPage(ctx, undefined);
    }, end.closest<HTMLElement>("td") ?? end.parentElement ?? undefined),
  );
  return end;
}

function openRows(ctx: Ctx, open: Session[], byId: Map<string, Machine>): (Node | string)[][] {
  return open.map((s) => {
    const machine = byId.get(s.machine_id);
    const name = machine ? machineName(machine) : "a removed machine";
    const join = h("a", { class: "button primary", href: `/viewer.html#${s.id}`, "aria-label": `Join the session on ${name}` }, "Join");
    return [
      machine ? nameCell(machine) : name,
      kindWords(s.kind),
      s.technician ?? "—",
      accessCell(s),
      consentWords(s.consent),
      stateOf(s),
      timeAgo(s.created_at_ms),
      h("span", { class: "actions" }, join, endButton(ctx, s, name)),
    ];
  });
}

function historyRows(ended: Session[], byId: Map<string, Machine>): (Node | string)[][] {
  return ended.map((s) => {
    const machine = byId.get(s.machine_id);
    return [
      machine ? nameCell(machine) : "a removed machine",
      kindWords(s.kind),
      s.technician ?? "—",
      timeAgo(s.created_at_ms),
      timeAgo(s.ended_at_ms),
      endWords(s.end_reason),
    ];
  });
}

export const sessionsPage: Page = async (ctx, param) => {
  const all = param === "history";
  const [sessions, machines] = await Promise.all([
    ctx.api.get("/api/sessions?include_ended=true").then((v) => listOf<Session>(v)),
    ctx.api.get("/api/machines").then((v) => listOf<Machine>(v)),
  ]);
  const byId = new Map(machines.map((m) => [String(m.id), m]));
  const open = sessions.filter((s) => !s.ended_at_ms);
  const ended = sessions.filter((s) => s.ended_at_ms).sort((a, b) => (b.ended_at_ms ?? 0) - (a.ended_at_ms ?? 0));
  const shown = all ? ended : ended.slice(0, HISTORY_SHORT);
  const openList = open.length
    ? table("Open sessions", ["Machine", "Kind", "Technician", "Access", "Consent", "State", "Started", "Actions"], openRows(ctx, open, byId))
    : h("p", { class: "empty" }, "No open session. Open one from a machine's page, or create a support code.");
  const history = shown.length
    ? table("Ended sessions, most recent first", ["Machine", "Kind", "Technician", "Started", "Ended", "How it ended"], historyRows(shown, byId))
    : h("p", { class: "empty" }, "No ended sessions yet.");
  const more =
    !all && ended.length > shown.length ? h("p", {}, h("a", { href: "#/sessions/history" }, `Show all ${ended.length} ended sessions`)) : "";
  ctx.layout.show("Sessions", openList, h("h2", { id: "history" }, "History"), history, more);
};
