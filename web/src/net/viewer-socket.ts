// The viewer's WebSocket to `/ws/viewer`: one protobuf `Envelope` per binary message.
//
// The viewer token goes in the first message (`ViewerAuth`), never in the URL, so it stays out of
// proxy and server access logs.

import { reach } from "../gen/reach.js";

export type Envelope = reach.v1.Envelope;
export const { Envelope } = reach.v1;

export interface SocketHandlers {
  onEnvelope(envelope: Envelope): void;
  onClose(code: number, reason: string): void;
}

export class ViewerSocket {
  private readonly socket: WebSocket;
  private abandoned = false;

  constructor(token: string, handlers: SocketHandlers) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.socket = new WebSocket(`${scheme}//${location.host}/ws/viewer`);
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("open", () => this.send({ viewerAuth: { token } }));
    this.socket.addEventListener("message", (event) => {
      if (this.abandoned || !(event.data instanceof ArrayBuffer)) return;
      let envelope: Envelope;
      try {
        envelope = Envelope.decode(new Uint8Array(event.data));
      } catch {
        return; // A message we cannot read is dropped, never acted on.
      }
      handlers.onEnvelope(envelope);
    });
    this.socket.addEventListener("close", (event) => {
      if (!this.abandoned) handlers.onClose(event.code, event.reason);
    });
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(body: reach.v1.IEnvelope): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(Envelope.encode(body).finish());
  }

  close(): void {
    this.socket.close(1000, "viewer closed");
  }

  /** Closes without telling the handlers anything more (a replaced or dropped connection).
   * 1000 tells the server the viewer left; another code (4000) reads as a dropped connection,
   * whose USB claims the server keeps for a resume. */
  abandon(code = 1000, reason = "viewer reconnecting"): void {
    this.abandoned = true;
    this.socket.close(code, reason);
  }
}
