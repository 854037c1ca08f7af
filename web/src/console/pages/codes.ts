import { h, field, table, when } from "../../ui/dom";
import { timeAgo } from "../../ui/words";
import type { ConsoleEvent } from "../../net/console-events";
import { attempt, type Ctx, type Page } from "../context";
import { can, listOf } from "../session";

interface CreatedCode {
  id: string;
  code: string;
  expires_at_ms: number;
  access: string;
  usb: boolean;
}

interface ActiveCode {
  id: string;
  technician: string;
  access: string;
  usb: boolean;
  expires_at_ms: number;
}

const LIFETIMES: [string, number][] = [
  ["10 minutes", 600],
  ["30 minutes", 1800],
  ["1 hour", 3600],
  ["1 day", 86400],
];

function accessWords(access: string, usb: boolean): string {
  const base = access === "control" ? "view and control" : "view only";
  return usb ? `${base}, with USB devices` : base;
}

/** What to tell the person being helped, with the one command they run. */
function handout(ctx: Ctx, code: CreatedCode): HTMLElement {
  const copy = h("button", { type: "button" }, "Copy code");
  copy.addEventListener("click", () => void navigator.clipboard.writeText(code.code).then(() => ctx.layout.say("Code copied.")));
  const command = `reach agent --server ${location.origin} --code ${code.code}`;
  const copyCommand = h("button", { type: "button" }, "Copy command");
  copyCommand.addEventListener("click", () => void navigator.clipboard.writeText(command).then(() => ctx.layout.say("Command copied.")));
  return h(
    "div",
    { class: "card" },
    h("p", { class: "code" }, h("output", { id: "support-code" }, code.code), " ", copy),
    h("p", { id: "code-expiry" }, `Valid until ${when(code.expires_at_ms)} · asks for ${accessWords(code.access, code.usb)}.`),
    h("p", {}, "Read it to the person you help. On their computer they run:"),
    h("pre", {}, h("code", { id: "code-command" }, command)),
    copyCommand,
    h("p", { class: "hint" }, "They need the reach program: the same binary you run, copied to their machine (one file, no installer)."),
  );
}

function options(ctx: Ctx): { form: HTMLFormElement; read: () => Record<string, unknown> } {
  const mayControl = can(ctx.me, "control");
  const access = h(
    "select",
    { id: "code-access" },
    h("option", { value: "control", selected: mayControl, disabled: !mayControl }, "View and control"),
    h("option", { value: "view_only", selected: !mayControl }, "View only"),
  );
  const usb = h("input", { type: "checkbox", id: "code-usb", disabled: !can(ctx.me, "usb") });
  const ttl = h("select", { id: "code-ttl" }, ...LIFETIMES.map(([label, secs]) => h("option", { value: String(secs) }, label)));
  const form = h(
    "form",
    { class: "card", "aria-label": "New support code" },
    field("Access", access),
    field("Valid for", ttl),
    h("p", {}, h("label", {}, usb, " Also ask for USB devices")),
    h("button", { type: "submit", class: "primary" }, "Create support code"),
  );
  const read = () => ({ access: access.value, usb: usb.checked, ttl_secs: Number(ttl.value) });
  return { form, read };
}

async function activeCodes(ctx: Ctx): Promise<HTMLElement> {
  const codes = listOf<ActiveCode>(await ctx.api.get("/api/support-codes"));
  if (codes.length === 0) return h("p", { id: "active-codes", class: "empty" }, "No unused codes.");
  const rows = codes.map((c) => {
    const revoke = h("button", { type: "button", class: "danger" }, "Revoke");
    revoke.setAttribute("aria-label", `Revoke the code created by ${c.technician}, valid until ${when(c.expires_at_ms)}`);
    revoke.addEventListener("click", () =>
      attempt(ctx, async () => {
        if (!confirm("Revoke this support code? Nobody can use it afterwards.")) return;
        await ctx.api.delete(`/api/support-codes/${c.id}`);
        ctx.layout.say("Code revoked.");
        await codesPage(ctx, undefined);
      }),
    );
    return [c.technician, accessWords(c.access, c.usb), timeAgo(c.expires_at_ms), revoke];
  });
  const list = table("Unused codes (the codes themselves are shown only once)", ["Created by", "Asks for", "Expires", "Actions"], rows);
  list.id = "active-codes";
  return list;
}

/** Tells the technician, when the tab is in the background, that the customer answered. */
function notify(text: string): void {
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    new Notification("Reach", { body: text });
  }
}

/** Follows one code: the customer connects, then accepts, declines or does not answer. */
function follow(codeId: string, progress: HTMLElement, refreshList: () => void): (e: ConsoleEvent) => void {
  let sessionId: string | null = null;
  let timeoutSecs = 60;
  let countdown: number | undefined;
  const say = (...children: (Node | string)[]) => progress.replaceChildren(...children);
  return (event) => {
    if (event.kind === "consent_pending" && event.timeout_secs) timeoutSecs = event.timeout_secs;
    if (event.kind === "code_used" && event.code_id === codeId && event.session_id) {
      sessionId = event.session_id;
      refreshList();
      let left = timeoutSecs;
      const tick = () => say(`Customer connected — waiting for their answer (${left} s).`);
      tick();
      countdown = window.setInterval(() => {
        left = Math.max(0, left - 1);
        tick();
      }, 1000);
      return;
    }
    if (!sessionId || event.session_id !== sessionId) {
      if (event.kind === "code_revoked" || event.kind === "code_used") refreshList();
      return;
    }
    window.clearInterval(countdown);
    if (event.kind === "consent_granted") {
      say("Accepted — ", h("a", { href: `/viewer.html#${sessionId}`, id: "join-accepted" }, "Join"));
      notify("The customer accepted. Join the session.");
    } else if (event.kind === "consent_denied") {
      say(event.reason === "consent_timeout" ? "No answer in time." : "Declined by the customer.");
      notify("The customer did not accept the session.");
    } else if (event.kind === "session_ended") {
      say("The session ended.");
    }
  };
}

export const codesPage: Page = async (ctx) => {
  const result = h("div", { id: "code-result", "aria-live": "polite" });
  const progress = h("p", { id: "code-progress", class: "callout", role: "status", "aria-live": "polite" });
  const { form, read } = options(ctx);
  const active = h("div", {}, await activeCodes(ctx));
  const refreshList = () => void activeCodes(ctx).then((list) => active.replaceChildren(list)).catch(() => undefined);
  ctx.onEvent = (event) => {
    if (event.kind === "code_revoked" || event.kind === "code_used") refreshList();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if ("Notification" in window && Notification.permission === "default") void Notification.requestPermission();
    void attempt(ctx, async () => {
      const code = await ctx.api.post<CreatedCode>("/api/support-codes", read());
      result.replaceChildren(handout(ctx, code), progress);
      progress.textContent = "Waiting for the customer to connect…";
      ctx.onEvent = follow(code.id, progress, refreshList);
      active.replaceChildren(await activeCodes(ctx));
    }, form);
  });
  ctx.layout.show(
    "Support codes",
    h("p", {}, "A support code lets a person you help start an attended session. They are asked to accept before you see anything."),
    form,
    result,
    h("h2", {}, "Unused codes"),
    active,
  );
};
