// The USB panel's live part: the remote host's shareable devices over the viewer's USB channel,
// Open / Close per device, and for each open claim statistics refreshed every second (control
// round trips, throughput and bytes each way, credit in flight, transfers, errors, resumes) and,
// for a CDC-ACM device, a serial terminal. Claims survive a dropped connection: the panel
// resumes them over the viewer's next connection.

import type { Device } from "../usb/codec";
import { UsbError, UsbSession, percentile, type ClaimStats } from "../usb/session";
import { h } from "../ui/dom";
import { attachedWords, type AttachedClaim } from "../ui/words";
import { SerialTerminal, serialEndpoints } from "./serial-terminal";

export function deviceName(d: Device): string {
  return d.product || d.manufacturer || "USB device";
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Bytes per second, or "idle" when nothing moved. */
function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond < 0.5 ? "idle" : `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

function formatMs(ms: number | null): string {
  return ms === null ? "–" : `${ms.toFixed(1)} ms`;
}

interface ClaimView {
  claim: number;
  element: HTMLElement;
  stats: HTMLElement;
  terminal: SerialTerminal | null;
  /** The counters at the previous tick, for the per-second figures. */
  last: { at: number; bytesOut: number; bytesIn: number } | null;
  rateOut: number;
  rateIn: number;
}

export class UsbDevices {
  readonly element = h("section", { class: "usb-devices", "aria-label": "Devices on the remote machine" });
  private readonly session: UsbSession;
  private devices: Device[] = [];
  private readonly claims = new Map<string, ClaimView>();
  private readonly waiting = new Set<string>();
  private readonly problems = new Map<string, string>();
  private listProblem = "";
  private attached: AttachedClaim[] = [];
  private loaded = false;
  private readonly timer: ReturnType<typeof setInterval>;

  /** Whether the viewer's connection is down (claims kept for a resume). */
  private detached = false;

  constructor(send: (frame: Uint8Array) => void) {
    this.session = new UsbSession(send, {
      onClosed: (claim, reason) => this.closed(claim, reason),
      onDeviceEvent: () => void this.refresh(),
      onResumed: () => this.tick(),
    });
    this.timer = setInterval(() => this.tick(), 1000);
    this.render();
    void this.refresh();
  }

  receive(frame: Uint8Array): void {
    this.session.receive(frame);
  }

  /** The socket closed for good (session over, left, refused): the claims are gone with it. */
  stop(why: string): void {
    clearInterval(this.timer);
    this.session.shutdown(why);
  }

  /** Claims attached to technicians' computers: named on the rows of devices with those ids. */
  setAttached(list: AttachedClaim[]): void {
    this.attached = list;
    this.render();
  }

  /** The connection dropped: claims wait (the host keeps them 30 s) for `resume`. */
  detach(why: string): void {
    this.detached = true;
    this.session.detach(why);
    this.render();
  }

  /** Whether claims wait for a new connection. */
  get waitingToResume(): boolean {
    return this.detached;
  }

  /** The viewer's new connection: RESUME every open claim over it, then list again. */
  resume(send: (frame: Uint8Array) => void): void {
    this.detached = false;
    this.session.resume(send);
    this.render();
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this.devices = await this.session.list();
      this.listProblem = "";
    } catch (error) {
      this.listProblem = error instanceof Error ? error.message : String(error);
    }
    this.loaded = true;
    this.render();
  }

  private async open(d: Device): Promise<void> {
    this.waiting.add(d.bus_id);
    this.problems.delete(d.bus_id);
    this.render();
    try {
      const opened = await this.session.open({ bus_id: d.bus_id });
      const device = opened.device ?? d;
      const stats = h("dl", { class: "usb-stats" });
      const descriptor = h("button", { type: "button" }, "Read device descriptor");
      const result = h("p", { class: "hint descriptor" });
      descriptor.addEventListener("click", () => void this.readDescriptor(opened.claim_id, result));
      const ends = serialEndpoints(device);
      const terminal = ends ? new SerialTerminal(this.session, opened.claim_id, ends, deviceName(device)) : null;
      const element = h("div", { class: "claim" }, stats, h("div", { class: "actions" }, descriptor), result, terminal?.element);
      this.claims.set(d.bus_id, { claim: opened.claim_id, element, stats, terminal, last: null, rateOut: 0, rateIn: 0 });
      this.tick();
    } catch (error) {
      this.problems.set(d.bus_id, openProblem(error, deviceName(d)));
    } finally {
      this.waiting.delete(d.bus_id);
      this.render();
    }
  }

  /** GET_DESCRIPTOR(device): a control IN round trip the statistics count. */
  private async readDescriptor(claim: number, out: HTMLElement): Promise<void> {
    try {
      const reply = await this.session.control(claim, { requestType: 0x80, request: 6, value: 0x0100, index: 0 }, 18, undefined, 1000);
      out.textContent = reply.status === "ok"
        ? `Device descriptor: ${[...reply.data].map((b) => b.toString(16).padStart(2, "0")).join(" ")}`
        : `The device answered ${reply.status}.`;
    } catch (error) {
      out.textContent = `Failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    this.tick();
  }

  private async close(busId: string): Promise<void> {
    const view = this.claims.get(busId);
    if (view) await this.session.close(view.claim);
  }

  private closed(claim: number, reason: string): void {
    for (const [busId, view] of this.claims) {
      if (view.claim !== claim) continue;
      view.terminal?.stop();
      this.claims.delete(busId);
      if (reason !== "requested") this.problems.set(busId, CLOSED_REASONS[reason] ?? `The claim closed (${reason}).`);
    }
    this.render();
  }

  /** Every second: the per-second figures from the counters' change since the last tick. */
  private tick(): void {
    const now = performance.now();
    for (const view of this.claims.values()) {
      const stats = this.session.stats(view.claim);
      if (!stats) continue;
      const last = view.last;
      if (last && now - last.at >= 500) {
        const seconds = (now - last.at) / 1000;
        view.rateOut = (stats.bytesOut - last.bytesOut) / seconds;
        view.rateIn = (stats.bytesIn - last.bytesIn) / seconds;
      }
      if (!last || now - last.at >= 500) view.last = { at: now, bytesOut: stats.bytesOut, bytesIn: stats.bytesIn };
      view.stats.replaceChildren(...statRows(stats, view.rateOut, view.rateIn));
    }
  }

  private render(): void {
    const refresh = h("button", { type: "button" }, "Refresh list");
    refresh.addEventListener("click", () => void this.refresh());
    const list = h("ul", { class: "usb-list" }, ...this.devices.map((d) => this.row(d)));
    const empty = this.loaded && this.devices.length === 0 && !this.listProblem ? h("p", { class: "hint" }, "The remote machine shares no USB devices.") : "";
    this.element.replaceChildren(
      h("div", { class: "panel-head" }, h("h3", {}, "Devices on the remote machine"), refresh),
      this.loaded ? "" : h("p", { class: "hint" }, "Asking the remote machine…"),
      this.detached ? h("p", { class: "callout", role: "status" }, "Connection lost: open devices stay claimed for 30 s and resume when the viewer reconnects.") : "",
      this.listProblem ? h("p", { class: "error", role: "status" }, `Could not list devices: ${this.listProblem}`) : "",
      empty,
      list,
    );
  }

  private row(d: Device): HTMLElement {
    const name = deviceName(d);
    const view = this.claims.get(d.bus_id);
    const waiting = this.waiting.has(d.bus_id);
    const button = view
      ? h("button", { type: "button", "aria-label": `Close ${name}` }, "Close")
      : h("button", { type: "button", class: "primary", "aria-label": `Open ${name}`, disabled: waiting }, "Open");
    button.addEventListener("click", () => void (view ? this.close(d.bus_id) : this.open(d)));
    const problem = this.problems.get(d.bus_id);
    const attached = this.attached.filter((c) => c.vendor_id === d.vendor_id && c.product_id === d.product_id);
    return h(
      "li",
      { class: "usb-device", "data-bus-id": d.bus_id },
      h("div", { class: "device-head" },
        h("div", {},
          h("strong", {}, name),
          h("span", { class: "ids" }, ` ${d.vendor_id}:${d.product_id}`),
          d.serial ? h("span", { class: "serial-no" }, ` serial ${d.serial}`) : ""),
        button),
      ...attached.map((c) => h("p", { class: "attached-note" }, capitalised(attachedWords(c)))),
      waiting ? h("p", { class: "callout", role: "status" }, `Waiting for the remote user to allow ${name}…`) : "",
      problem ? h("p", { class: "error", role: "status" }, problem) : "",
      view?.element,
    );
  }
}

/** Why a claim closed without being asked to, as a sentence for the technician. */
const CLOSED_REASONS: Record<string, string> = {
  unplugged: "The device was unplugged from the remote machine.",
  shutdown: "The remote machine stopped sharing USB devices (its switch was turned off, or the session ended).",
  resume_rejected: "The claim could not be resumed after the connection came back (the remote machine had already released it). Open it again.",
};

/** Why an OPEN failed, as a sentence for the technician. */
function openProblem(error: unknown, name: string): string {
  const code = error instanceof UsbError ? error.code : "";
  switch (code) {
    case "denied":
      return `${name} was not allowed: the person at the remote machine said no, or its USB policy does not share it.`;
    case "busy":
      return `${name} is in use by someone else (or 32 devices are open already). Try again later.`;
    case "no_device":
      return `${name} is no longer plugged in. Refresh the list.`;
    case "timeout":
      return `The remote machine did not answer about ${name} in time. Try again.`;
    default:
      return `Could not open ${name}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function statRows(s: ClaimStats, rateOut: number, rateIn: number): HTMLElement[] {
  const rows: Array<[string, string, string]> = [
    ["rtt-p50", "Control round trip p50", formatMs(percentile(s.controlRtts, 0.5))],
    ["rtt-p99", "Control round trip p99", formatMs(percentile(s.controlRtts, 0.99))],
    ["rate-out", "To the device, per second", formatRate(rateOut)],
    ["rate-in", "From the device, per second", formatRate(rateIn)],
    ["bytes-out", "Sent to the device", formatBytes(s.bytesOut)],
    ["bytes-in", "Received from the device", formatBytes(s.bytesIn)],
    ["credit", "Credit in flight (out / in)", `${formatBytes(s.creditOut)} / ${formatBytes(s.creditIn)}`],
    ["in-flight", "Transfers in flight", String(s.inFlight)],
    ["transfers", "Transfers done", String(s.transfers)],
    ["errors", "Errors", String(s.errors)],
    ["resumes", "Resumes", String(s.resumes)],
  ];
  return rows.map(([key, label, value]) => h("div", { "data-stat": key }, h("dt", {}, label), h("dd", {}, value)));
}
