// The viewer's USB panel: whether this session may use the remote machine's USB devices, and
// why not (the server's own sentence). When USB is allowed, the browser speaks the USB channel
// itself over the viewer's socket (UsbDevices: list, open/close, live statistics, a serial
// terminal for CDC-ACM devices); the `reach usb remote` commands for this session are given
// too. When the session was opened without USB, it offers to open one with USB.

import type { ApiClient } from "../net/api";
import { ConsoleEvents } from "../net/console-events";
import { h } from "../ui/dom";
import type { AttachedClaim } from "../ui/words";
import { UsbDevices } from "./usb-devices";

/** The server's sentence for a session opened without USB (reach_proto::access::UsbDenial). */
const NOT_IN_SESSION = /opened without USB/;

export class UsbPanel {
  private available = false;
  private why = "";
  private username = "";
  private devices: UsbDevices | null = null;
  /** Claims attached to technicians' computers (`reach usb attach`), from the session. */
  private attached: AttachedClaim[] = [];

  constructor(
    private readonly toggle: HTMLButtonElement,
    private readonly panel: HTMLElement,
    private readonly api: ApiClient,
    private readonly sessionId: () => string,
    private readonly sendFrame: (frame: Uint8Array) => void,
  ) {
    toggle.addEventListener("click", () => this.setOpen(panel.hidden));
    void api
      .get<{ username: string }>("/api/me")
      .then((me) => {
        this.username = me.username;
        this.render();
      })
      .catch(() => undefined);
    // The console's push channel says when the session's attached claims change.
    const events = new ConsoleEvents(() => api.token);
    events.on((event) => {
      if (event.kind === "ready" || event.kind === "resync" || (event.kind === "usb_attached" && event.session_id === sessionId())) void this.loadAttached();
    });
    events.start();
  }

  /** Re-reads the session's `usb_attached` list. */
  private async loadAttached(): Promise<void> {
    try {
      const session = await this.api.get<{ usb_attached?: AttachedClaim[] }>(`/api/sessions/${encodeURIComponent(this.sessionId())}`);
      this.attached = session.usb_attached ?? [];
      this.devices?.setAttached(this.attached);
    } catch {
      // Not allowed to read the session, or it ended: nothing to show.
    }
  }

  /** The grant from the server's AuthOk: USB allowed, or the sentence saying why not. */
  update(available: boolean, why: string): void {
    this.available = available;
    this.why = why;
    // A new grant comes with a new connection: claims kept over a dropped connection resume
    // over it; otherwise a new USB session starts.
    if (available && this.devices?.waitingToResume) {
      this.devices.resume(this.sendFrame);
    } else {
      this.devices?.stop("reconnected");
      this.devices = available ? new UsbDevices(this.sendFrame) : null;
      this.devices?.setAttached(this.attached);
    }
    this.render();
  }

  /** One USB protocol frame from the remote host. */
  receive(frame: Uint8Array): void {
    this.devices?.receive(frame);
  }

  /** The viewer's connection closed. When it was lost (the viewer reconnects by itself) the
   * claims wait for the next connection; otherwise they end with it. */
  disconnected(lost: boolean): void {
    if (lost && this.devices) {
      this.devices.detach("the connection was lost");
      return;
    }
    this.devices?.stop("the connection closed");
    this.devices = null;
    this.render();
  }

  private setOpen(open: boolean): void {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.panel.querySelector<HTMLElement>("h2")?.focus();
  }

  private render(): void {
    const id = this.sessionId();
    const close = h("button", { type: "button", class: "close" }, "Close");
    close.addEventListener("click", () => {
      this.setOpen(false);
      this.toggle.focus();
    });
    const status = this.available
      ? h("p", { class: "callout good" }, "USB may be used in this session. The remote host's access list still decides which devices it shares, and it may ask the person at the machine first.")
      : h("p", { class: "callout bad" }, `USB is not available: ${this.why || "the server did not say why"}.`);
    const login = `reach login --server ${location.origin} --user ${this.username || "YOUR_NAME"}`;
    const text = [login, `reach usb remote list --session ${id}`, `reach usb remote open --session ${id} --vendor-id VID --product-id PID`].join("\n");
    const copy = h("button", { type: "button" }, "Copy commands");
    copy.addEventListener("click", () => void navigator.clipboard?.writeText(text).then(() => (copy.textContent = "Copied")).catch(() => undefined));
    const commands = h(
      "div",
      {},
      h("h3", {}, "From your computer"),
      h("p", {}, "To use a device with local programs (USB/IP), with the reach program:"),
      h("pre", {}, h("code", { id: "usb-commands" }, text)),
      copy,
    );
    this.panel.replaceChildren(
      h("div", { class: "panel-head" }, h("h2", { tabindex: "-1" }, "USB devices"), close),
      status,
      NOT_IN_SESSION.test(this.why) ? this.reopenButton() : "",
      this.devices?.element ?? "",
      this.available ? commands : "",
    );
  }

  /** Opens a new session on the same machine with USB asked for, and joins it. */
  private reopenButton(): HTMLElement {
    const button = h("button", { type: "button", class: "primary", id: "usb-reopen" }, "Open a session with USB");
    const problem = h("p", { class: "error", role: "status" });
    button.addEventListener("click", async () => {
      try {
        const session = await this.api.get<{ machine_id: string; access: string }>(`/api/sessions/${encodeURIComponent(this.sessionId())}`);
        const opened = await this.api.post<{ id: string }>("/api/sessions", { machine_id: session.machine_id, access: session.access, usb: true });
        location.assign(`${location.pathname}${location.search}#${opened.id}`);
        location.reload();
      } catch (error) {
        problem.textContent = error instanceof Error ? error.message : String(error);
      }
    });
    return h("div", {}, button, problem);
  }
}
