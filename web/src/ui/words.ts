// Readable words for what the API says in ids, enum names and epoch milliseconds.

import { h } from "./dom";

/** "just now", "5 min ago", "3 h ago", "yesterday", or the date for older times. */
export function ago(ms: number, now = Date.now()): string {
  const secs = Math.round((now - ms) / 1000);
  if (secs < 0) return inFuture(-secs);
  if (secs < 45) return "just now";
  if (secs < 3600) return `${Math.max(1, Math.round(secs / 60))} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  if (secs < 2 * 86400) return "yesterday";
  return new Date(ms).toLocaleDateString();
}

function inFuture(secs: number): string {
  if (secs < 45) return "in a moment";
  if (secs < 3600) return `in ${Math.round(secs / 60)} min`;
  if (secs < 86400) return `in ${Math.round(secs / 3600)} h`;
  return `on ${new Date(Date.now() + secs * 1000).toLocaleDateString()}`;
}

/** A `<time>` reading as a relative time, with the exact time as its tooltip. */
export function timeAgo(ms: number | null | undefined): HTMLElement | string {
  if (ms === null || ms === undefined) return "—";
  const date = new Date(ms);
  return h("time", { datetime: date.toISOString(), title: date.toLocaleString() }, ago(ms));
}

/** The consent state of a session as a sentence fragment. */
export function consentWords(consent: string | undefined): string {
  switch (consent) {
    case "not_required":
      return "not needed";
    case "pending":
      return "waiting for the customer";
    case "granted":
      return "accepted";
    case "denied":
      return "declined";
    default:
      return consent ?? "—";
  }
}

/** Why a session ended. */
export function endWords(reason: string | null | undefined): string {
  switch (reason) {
    case "ended_by_user":
      return "ended by a technician";
    case "idle":
      return "nobody was watching";
    case "agent_disconnected":
      return "the machine disconnected";
    case "consent_refused":
      return "the customer declined";
    case "consent_timeout":
      return "the customer did not answer";
    case "server_restart":
      return "the server restarted";
    case null:
    case undefined:
    case "":
      return "ended";
    default:
      return reason.replace(/_/g, " ");
  }
}

export function kindWords(kind: string | undefined): string {
  return kind === "attended" ? "Attended (support code)" : kind === "managed" ? "Managed" : (kind ?? "—");
}

export function accessWords(access: string | undefined, usb = false): string {
  const base = access === "control" ? "View and control" : "View only";
  return usb ? `${base}, USB` : base;
}

/** A claim a technician attached to their own kernel (`reach usb attach`), as the server keeps it
 * on the session (`usb_attached`). */
export interface AttachedClaim {
  claim_id: number;
  technician: string;
  technician_name?: string;
  host: string;
  vendor_id: string;
  product_id: string;
  since_ms?: number;
}

/** "attached to <host> by <technician>". */
export function attachedWords(claim: AttachedClaim): string {
  return `attached to ${claim.host || "an unnamed computer"} by ${claim.technician_name || "a technician"}`;
}

/** A small coloured label; the text carries the meaning, the colour only repeats it. */
export function badge(text: string, tone: "good" | "bad" | "warn" | "muted" | "info" = "muted"): HTMLElement {
  return h("span", { class: `badge ${tone}` }, text);
}
