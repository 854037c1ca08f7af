import { h, field, table, when } from "../../ui/dom";
import { query } from "../../net/api";
import { attempt, type Page } from "../context";
import { listOf } from "../session";

interface AuditRecord {
  id: number;
  ts?: string;
  ts_ms?: number;
  created_at?: string;
  actor?: string;
  event_type: string;
  details?: unknown;
}

interface Verdict {
  ok: boolean;
  broken_at_id?: number | null;
}

const PAGE_SIZE = 50;

export const auditPage: Page = async (ctx, param) => {
  const filters = new URLSearchParams(param ?? "");
  const before = filters.get("before_id") ?? undefined;
  const type = h("input", { value: filters.get("event_type") ?? "", placeholder: "e.g. login_failed" });
  const page = await ctx.api.get<{ items: AuditRecord[]; next_before_id?: number | null }>(
    `/api/audit${query({ event_type: type.value, limit: PAGE_SIZE, before_id: before })}`,
  );
  const records = listOf<AuditRecord>(page.items);

  const verdict = h("p", { id: "verify-result", role: "status" });
  const verify = h("button", { type: "button" }, "Verify chain");
  verify.addEventListener("click", () =>
    attempt(ctx, async () => {
      const answer = await ctx.api.get<Verdict>("/api/audit/verify");
      verdict.className = answer.ok ? "ok" : "error";
      verdict.textContent = answer.ok
        ? "Chain verified: no record was edited or removed."
        : `Chain broken at record ${answer.broken_at_id ?? "?"}: the log was tampered with.`;
    }),
  );

  const filter = h("form", { class: "inline", "aria-label": "Filter audit log" }, field("Event type", type), h("button", { type: "submit" }, "Filter"));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go(`#/audit/${new URLSearchParams({ event_type: type.value }).toString()}`);
  });

  const rows = records.map((r) => [
    String(r.id),
    when(r.ts ?? r.ts_ms ?? r.created_at),
    r.actor ?? "—",
    r.event_type,
    h("code", {}, JSON.stringify(r.details ?? {})),
  ]);
  const pager = h(
    "p",
    {},
    before ? h("a", { href: `#/audit/${pageParams(filters, undefined)}` }, "Newest") : "",
    " ",
    page.next_before_id ? h("a", { href: `#/audit/${pageParams(filters, page.next_before_id)}` }, "Older") : "",
  );
  ctx.layout.show(
    "Audit log",
    h("div", { class: "toolbar" }, verify, verdict),
    filter,
    table("Audit records, newest first", ["Id", "Time", "Actor", "Event", "Details"], rows),
    pager,
  );
};

function pageParams(filters: URLSearchParams, beforeId: number | undefined): string {
  const next = new URLSearchParams(filters);
  if (beforeId === undefined) next.delete("before_id");
  else next.set("before_id", String(beforeId));
  return next.toString();
}
