// A serial terminal over one open CDC-ACM claim: line settings (SET_LINE_CODING on the
// communications interface), typed text sent as bulk OUT, and one bulk IN kept pending on the
// data interface whose bytes are shown as they arrive.

import type { Device } from "../usb/codec";
import { UsbError, type UsbSession } from "../usb/session";
import { field, h } from "../ui/dom";

/** Keeps the terminal's text bounded. */
const MAX_TERMINAL_CHARS = 64 * 1024;
const READ_LENGTH = 4096;
/** A console read may wait for output as long as the claim is open. */
const READ_CLIENT_TIMEOUT_MS = 24 * 3600 * 1000;

export interface SerialEndpoints {
  commInterface: number;
  bulkIn: number;
  bulkOut: number;
}

/** The endpoints of a CDC-ACM device (a data interface, class 0x0a, with bulk IN and OUT), or null. */
export function serialEndpoints(device: Device): SerialEndpoints | null {
  const interfaces = device.interfaces ?? [];
  const data = interfaces.find((i) => i.class === 0x0a);
  const comm = interfaces.find((i) => i.class === 0x02);
  const bulkIn = data?.endpoints.find((e) => e.kind === "bulk" && e.address & 0x80);
  const bulkOut = data?.endpoints.find((e) => e.kind === "bulk" && !(e.address & 0x80));
  if (!data || !bulkIn || !bulkOut) return null;
  return { commInterface: comm?.number ?? 0, bulkIn: bulkIn.address, bulkOut: bulkOut.address };
}

/** The 7-byte CDC line coding: rate (LE u32), stop bits, parity, data bits. */
export function lineCoding(baud: number, stopBits: number, parity: number, dataBits: number): Uint8Array {
  const out = new Uint8Array(7);
  new DataView(out.buffer).setUint32(0, baud, true);
  out[4] = stopBits;
  out[5] = parity;
  out[6] = dataBits;
  return out;
}

let nextId = 0;

export class SerialTerminal {
  readonly element: HTMLElement;
  private readonly output: HTMLPreElement;
  private readonly problem: HTMLElement;
  private readonly decoder = new TextDecoder();
  private reading = true;

  constructor(
    private readonly session: UsbSession,
    private readonly claim: number,
    private readonly endpoints: SerialEndpoints,
    label: string,
  ) {
    const id = `serial-${++nextId}`;
    const baud = h("select", { id: `${id}-baud` });
    for (const rate of [9600, 19200, 38400, 57600, 115200]) baud.append(h("option", { value: String(rate), selected: rate === 115200 }, String(rate)));
    const format = h("select", { id: `${id}-format` });
    for (const [value, name] of [["8N1", "8 data bits, no parity, 1 stop bit"], ["7E1", "7 data bits, even parity, 1 stop bit"]]) format.append(h("option", { value }, name));
    const apply = h("button", { type: "button" }, "Apply line settings");
    this.output = h("pre", { class: "terminal", role: "log", "aria-live": "polite", "aria-label": `Serial output of ${label}`, tabindex: "0" });
    const input = h("input", { type: "text", id: `${id}-input`, autocomplete: "off", spellcheck: "false" });
    const send = h("button", { type: "submit" }, "Send");
    this.problem = h("p", { class: "error", role: "status" });
    const form = h("form", { class: "terminal-input" }, field("Send to the device", input), send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.write(`${input.value}\r`);
      input.value = "";
    });
    apply.addEventListener("click", () => void this.setLine(Number(baud.value), format.value));
    this.element = h(
      "section",
      { class: "serial", "aria-label": `Serial terminal for ${label}` },
      h("h4", {}, "Serial terminal"),
      h("div", { class: "line-settings" }, field("Speed (baud)", baud), field("Format", format), apply),
      this.output,
      form,
      this.problem,
    );
    void this.setLine(115200, "8N1").then(() => this.readLoop());
  }

  /** SET_LINE_CODING (class request 0x20 to the communications interface). */
  private async setLine(baud: number, format: string): Promise<void> {
    const coding = format === "7E1" ? lineCoding(baud, 0, 2, 7) : lineCoding(baud, 0, 0, 8);
    const setup = { requestType: 0x21, request: 0x20, value: 0, index: this.endpoints.commInterface };
    try {
      const reply = await this.session.control(this.claim, setup, 0, coding, 1000);
      this.problem.textContent = reply.status === "ok" ? "" : `The device refused the line settings (${reply.status}).`;
      if (reply.status === "ok") this.element.dataset.line = `${baud} ${format}`;
    } catch (error) {
      this.problem.textContent = `Line settings failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  private async write(text: string): Promise<void> {
    try {
      const reply = await this.session.bulk(this.claim, this.endpoints.bulkOut, 0, new TextEncoder().encode(text), 2000);
      if (reply.status !== "ok") this.problem.textContent = `Sending failed (${reply.status}).`;
    } catch (error) {
      this.problem.textContent = `Sending failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Keeps one bulk IN pending; each completion's bytes are appended. */
  private async readLoop(): Promise<void> {
    while (this.reading) {
      try {
        const reply = await this.session.bulk(this.claim, this.endpoints.bulkIn, READ_LENGTH, undefined, 0, READ_CLIENT_TIMEOUT_MS);
        if (reply.data.length > 0) this.append(this.decoder.decode(reply.data, { stream: true }));
        if (reply.status !== "ok" && reply.status !== "timeout") {
          this.problem.textContent = `Reading stopped (${reply.status}).`;
          return;
        }
      } catch (error) {
        // A read whose reply was lost while the connection was down ran once: read again.
        if (error instanceof UsbError && error.code === "lost") continue;
        return; // The claim closed.
      }
    }
  }

  private append(text: string): void {
    const all = (this.output.textContent ?? "") + text.replace(/\r\n?/g, "\n");
    this.output.textContent = all.length > MAX_TERMINAL_CHARS ? all.slice(-MAX_TERMINAL_CHARS) : all;
    this.output.scrollTop = this.output.scrollHeight;
  }

  stop(): void {
    this.reading = false;
  }
}
