import { h, table, when } from "../../ui/dom";
import { attempt, type Page } from "../context";
import { listOf } from "../session";

interface Session {
  id: number | string;
  machine_id?: number | string;
  machine_name?: string;
  kind?: string;
  consent?: string;
  technician?: string;
  created_at_ms?: number;
  ended_at_ms?: number | null;
}

export const sessionsPage: Page = async (ctx) => {
  const sessions = listOf<Session>(await ctx.api.get("/api/sessions"));
  const rows = sessions.map((s) => {
    const end = h("button", { type: "button", class: "danger" }, "End");
    end.addEventListener("click", () =>
      attempt(ctx, async () => {
        const who = s.machine_name ?? String(s.machine_id ?? "this machine");
        if (!confirm(`End the session on ${who}? Everyone watching is disconnected.`)) return;
        await ctx.api.delete(`/api/sessions/${s.id}`);
        ctx.layout.say(`Session ${s.id} ended.`);
        await sessionsPage(ctx, undefined);
      }),
    );
    const join = h("a", { href: `/viewer.html#${s.id}` }, "Join");
    const state = s.ended_at_ms ? `ended ${when(s.ended_at_ms)}` : "open";
    return [String(s.id), s.machine_name ?? String(s.machine_id ?? "—"), s.kind ?? "—", s.technician ?? "—", s.consent ?? "—", state, when(s.created_at_ms), s.ended_at_ms ? "" : join, s.ended_at_ms ? "" : end];
  });
  ctx.layout.show("Sessions", table("Open sessions", ["Id", "Machine", "Kind", "Technician", "Consent", "State", "Started", "", ""], rows));
};
