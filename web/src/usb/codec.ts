// Sans-IO codec of the Reach USB protocol (docs/usb-protocol.md): frames, control-plane JSON
// bodies, transfer requests and replies, CREDIT. Everything big-endian; no I/O here.

export const Op = {
  List: 0x01,
  Open: 0x02,
  Opened: 0x03,
  Control: 0x04,
  Bulk: 0x05,
  Interrupt: 0x06,
  Credit: 0x07,
  Close: 0x08,
  Closed: 0x09,
  Resume: 0x0a,
  Hello: 0x10,
  Cancel: 0x11,
  DeviceEvent: 0x19,
  Error: 0xff,
} as const;

export const FLAG_EOF = 0x01;
export const HEADER_LEN = 8;
/** Frame payload (request id + chunk) toward a peer without `large_frames`. */
export const MAX_FRAME_PAYLOAD = 16384;
export const MAX_CHUNK = MAX_FRAME_PAYLOAD - 4;
/** What this client accepts from the host: it does not announce `large_frames`, but the spec's
 * receiver bound is 256 KiB + 64. */
export const MAX_RECEIVE_PAYLOAD = 262208;
export const MAX_JSON_MESSAGE = 256 * 1024;
export const MAX_TRANSFER = 16 * 1024 * 1024;
export const MAX_BINARY_MESSAGE = MAX_TRANSFER + 64;

/** Ops whose chunks count against the claim's byte credit. */
export function usesCredit(op: number): boolean {
  return op === Op.Control || op === Op.Bulk || op === Op.Interrupt || op === 0x18;
}

export interface Frame {
  op: number;
  eof: boolean;
  claim: number;
  requestId: number;
  chunk: Uint8Array;
}

export class CodecError extends Error {}

export function encodeFrame(f: Frame): Uint8Array {
  const out = new Uint8Array(HEADER_LEN + f.chunk.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, f.op);
  view.setUint8(1, f.eof ? FLAG_EOF : 0);
  view.setUint16(2, f.claim);
  view.setUint32(4, f.requestId >>> 0);
  out.set(f.chunk, HEADER_LEN);
  return out;
}

export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length < HEADER_LEN) throw new CodecError("frame shorter than its header");
  if (bytes.length - 4 > MAX_RECEIVE_PAYLOAD) throw new CodecError("frame payload too large");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint8(1);
  if (flags & ~FLAG_EOF) throw new CodecError(`reserved flag bits set: 0x${flags.toString(16)}`);
  return {
    op: view.getUint8(0),
    eof: (flags & FLAG_EOF) !== 0,
    claim: view.getUint16(2),
    requestId: view.getUint32(4),
    chunk: bytes.subarray(HEADER_LEN),
  };
}

/** Splits one message into frames of at most `maxChunk` body bytes; only the last has EOF. */
export function toFrames(op: number, claim: number, requestId: number, body: Uint8Array, maxChunk = MAX_CHUNK): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  do {
    const end = Math.min(body.length, offset + maxChunk);
    frames.push(encodeFrame({ op, eof: end === body.length, claim, requestId, chunk: body.subarray(offset, end) }));
    offset = end;
  } while (offset < body.length);
  return frames;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function jsonBody(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function parseJson<T>(body: Uint8Array): T {
  try {
    const value: unknown = JSON.parse(decoder.decode(body));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CodecError("not a JSON object");
    return value as T;
  } catch (error) {
    throw error instanceof CodecError ? error : new CodecError(`bad JSON body: ${String(error)}`);
  }
}

export interface Hello {
  versions: number[];
  capabilities: string[];
  window: number;
  max_frame_payload?: number;
}

export interface Endpoint {
  address: number;
  kind: string;
  max_packet_size: number;
  interval: number;
}

export interface Interface {
  number: number;
  alt: number;
  class: number;
  subclass: number;
  protocol: number;
  endpoints: Endpoint[];
}

export interface Device {
  bus_id: string;
  vendor_id: string;
  product_id: string;
  serial?: string | null;
  manufacturer?: string | null;
  product?: string | null;
  speed?: string;
  class?: number;
  interfaces?: Interface[];
}

export interface DeviceFilter {
  vendor_id?: string;
  product_id?: string;
  serial?: string;
  bus_id?: string;
}

export interface Opened {
  claim_id: number;
  device: Device;
  resume_token?: string;
  retention_ms?: number;
  resumed?: boolean;
}

export interface PeerError {
  code: string;
  message?: string;
}

/** A control request's 8-byte setup packet (without wLength, which is the transfer length). */
export interface Setup {
  requestType: number;
  request: number;
  value: number;
  index: number;
}

export const TransferFlag = { ShortNotOk: 0x01, ZeroPacket: 0x02 } as const;

/** CONTROL body after the request id. `data` for OUT (its length is wLength); `length` for IN. */
export function encodeControl(setup: Setup, inLength: number, data: Uint8Array, timeoutMs: number, flags = 0): Uint8Array {
  const isIn = (setup.requestType & 0x80) !== 0;
  const length = isIn ? inLength : data.length;
  if (length > 0xffff) throw new CodecError("a control transfer carries at most 65535 bytes");
  const out = new Uint8Array(13 + (isIn ? 0 : data.length));
  const view = new DataView(out.buffer);
  view.setUint8(0, flags);
  view.setUint32(1, timeoutMs >>> 0);
  view.setUint8(5, setup.requestType);
  view.setUint8(6, setup.request);
  view.setUint16(7, setup.value);
  view.setUint16(9, setup.index);
  view.setUint16(11, length);
  if (!isIn) out.set(data, 13);
  return out;
}

/** BULK / INTERRUPT body after the request id; direction from endpoint bit 7. */
export function encodeEndpoint(endpoint: number, inLength: number, data: Uint8Array, timeoutMs: number, flags = 0): Uint8Array {
  if ((endpoint & 0x7f) === 0) throw new CodecError("endpoint 0 is for control transfers");
  const isIn = (endpoint & 0x80) !== 0;
  const length = isIn ? inLength : data.length;
  if (length > MAX_TRANSFER) throw new CodecError("a transfer carries at most 16 MiB");
  const out = new Uint8Array(10 + (isIn ? 0 : data.length));
  const view = new DataView(out.buffer);
  view.setUint8(0, endpoint);
  view.setUint8(1, flags);
  view.setUint32(2, timeoutMs >>> 0);
  view.setUint32(6, length);
  if (!isIn) out.set(data, 10);
  return out;
}

export const STATUS_NAMES = ["ok", "cancelled", "stall", "timeout", "no_device", "overflow", "io_error", "invalid"] as const;
export type TransferStatus = (typeof STATUS_NAMES)[number];

export interface TransferReply {
  status: TransferStatus;
  actualLength: number;
  data: Uint8Array;
}

export function decodeReply(body: Uint8Array): TransferReply {
  if (body.length < 6) throw new CodecError("transfer reply shorter than 6 bytes");
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const status = STATUS_NAMES[view.getUint8(0)];
  if (status === undefined) throw new CodecError(`unknown transfer status ${view.getUint8(0)}`);
  if (view.getUint8(1) !== 0) throw new CodecError("reserved byte of a transfer reply is not 0");
  const actualLength = view.getUint32(2);
  const data = body.subarray(6);
  if (data.length !== 0 && data.length !== actualLength) throw new CodecError("reply data does not match actual_length");
  return { status, actualLength, data };
}

export function encodeCredit(bytes: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, bytes >>> 0);
  return out;
}

export function decodeCredit(body: Uint8Array): number {
  if (body.length !== 4) throw new CodecError("CREDIT body is not 4 bytes");
  return new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
}

/** Reassembles messages per (claim, request id), bounded as the spec says. */
export class Reassembler {
  private readonly partial = new Map<string, { op: number; parts: Uint8Array[]; size: number }>();
  private total = 0;

  /** The whole message once its EOF frame is in, else null. Throws CodecError on a bound. */
  push(frame: Frame): { op: number; claim: number; requestId: number; body: Uint8Array } | null {
    const key = `${frame.claim}/${frame.requestId}`;
    const open = this.partial.get(key);
    if (!open && frame.eof) return { op: frame.op, claim: frame.claim, requestId: frame.requestId, body: frame.chunk };
    const entry = open ?? { op: frame.op, parts: [], size: 0 };
    const limit = isJsonOp(entry.op) ? MAX_JSON_MESSAGE : MAX_BINARY_MESSAGE;
    if (entry.size + frame.chunk.length > limit || this.total + frame.chunk.length > 64 * 1024 * 1024 || (!open && this.partial.size >= 256)) {
      if (open) this.drop(key);
      throw new CodecError("too_large");
    }
    entry.parts.push(frame.chunk.slice());
    entry.size += frame.chunk.length;
    this.total += frame.chunk.length;
    this.partial.set(key, entry);
    if (!frame.eof) return null;
    this.drop(key);
    const body = new Uint8Array(entry.size);
    let at = 0;
    for (const part of entry.parts) {
      body.set(part, at);
      at += part.length;
    }
    return { op: entry.op, claim: frame.claim, requestId: frame.requestId, body };
  }

  private drop(key: string): void {
    const entry = this.partial.get(key);
    if (entry) this.total -= entry.size;
    this.partial.delete(key);
  }
}

export function isJsonOp(op: number): boolean {
  return [Op.List, Op.Open, Op.Opened, Op.Close, Op.Closed, Op.Resume, Op.Hello, Op.Error, Op.DeviceEvent].includes(op as 1);
}

/** `0525` from 0x0525. */
export function hex16(n: number): string {
  return n.toString(16).padStart(4, "0");
}
