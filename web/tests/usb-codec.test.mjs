// The browser's USB protocol client (web/src/usb) against byte literals of the Rust codec
// (crates/reach-usb-proto: proto/frame.rs, proto/data.rs, proto/control.rs tests) and a scripted
// host: no browser needed, the TypeScript is bundled with esbuild on the fly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSync } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

async function load(entry) {
  const out = buildSync({ entryPoints: [join(here, "..", "src", "usb", entry)], bundle: true, format: "esm", write: false, platform: "neutral" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].contents).toString("base64")}`);
}

const codec = await load("codec.ts");
const { UsbSession, percentile, WINDOW } = await load("session.ts");

const bytes = (...b) => Uint8Array.from(b);
const ascii = (s) => new TextEncoder().encode(s);
const json = (b) => JSON.parse(new TextDecoder().decode(b));

test("a frame header is big-endian with EOF in bit zero, as the Rust codec writes it", () => {
  const frame = codec.encodeFrame({ op: codec.Op.Bulk, eof: true, claim: 1, requestId: 2, chunk: ascii("x") });
  assert.deepEqual(frame, bytes(0x05, 0x01, 0, 1, 0, 0, 0, 2, 0x78));
  const big = codec.encodeFrame({ op: codec.Op.List, eof: true, claim: 0x1234, requestId: 0xdeadbeef, chunk: bytes() });
  assert.deepEqual(big.subarray(1, 8), bytes(1, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef));
  const back = codec.decodeFrame(big);
  assert.equal(back.claim, 0x1234);
  assert.equal(back.requestId, 0xdeadbeef);
});

test("short frames and reserved flag bits are refused", () => {
  assert.throws(() => codec.decodeFrame(bytes(0x05, 0x01, 0, 1)), codec.CodecError);
  assert.throws(() => codec.decodeFrame(bytes(0x05, 0x03, 0, 7, 0, 0, 0, 0)), /reserved flag/);
  assert.throws(() => codec.decodeFrame(new Uint8Array(8 + 262208)), /too large/);
});

test("a long message splits into full chunks with EOF only on the last, and reassembles", () => {
  const body = new Uint8Array(codec.MAX_CHUNK * 2 + 5).fill(7);
  const frames = codec.toFrames(codec.Op.Bulk, 3, 9, body).map((f) => codec.decodeFrame(f));
  assert.deepEqual(frames.map((f) => f.eof), [false, false, true]);
  assert.equal(frames[2].chunk.length, 5);
  const r = new codec.Reassembler();
  assert.equal(r.push(frames[0]), null);
  assert.equal(r.push(frames[1]), null);
  assert.deepEqual(r.push(frames[2]).body, body);
  assert.equal(codec.toFrames(codec.Op.Close, 3, 0, bytes()).length, 1, "an empty message is one EOF frame");
});

test("a bulk OUT request is the Rust codec's bytes", () => {
  const body = codec.encodeEndpoint(0x02, 0, ascii("abc"), 500, codec.TransferFlag.ZeroPacket);
  assert.deepEqual(body, bytes(0x02, 0x02, 0, 0, 1, 0xf4, 0, 0, 0, 3, 0x61, 0x62, 0x63));
  assert.deepEqual(codec.encodeEndpoint(0x81, 512, bytes(), 0), bytes(0x81, 0, 0, 0, 0, 0, 0, 0, 2, 0));
  assert.throws(() => codec.encodeEndpoint(0x80, 1, bytes(), 0), /endpoint 0/);
});

test("a control IN GET_DESCRIPTOR(device) carries wLength and no data", () => {
  const body = codec.encodeControl({ requestType: 0x80, request: 6, value: 0x0100, index: 0 }, 18, bytes(), 0);
  assert.deepEqual(body, bytes(0, 0, 0, 0, 0, 0x80, 6, 0x01, 0x00, 0, 0, 0, 18));
  const out = codec.encodeControl({ requestType: 0x21, request: 0x20, value: 0, index: 0 }, 0, bytes(0x80, 0x25, 0, 0, 0, 0, 8), 1000);
  assert.deepEqual(out, bytes(0, 0, 0, 0x03, 0xe8, 0x21, 0x20, 0, 0, 0, 0, 0, 7, 0x80, 0x25, 0, 0, 0, 0, 8));
});

test("replies, statuses and credits decode as the Rust codec writes them", () => {
  assert.deepEqual(codec.decodeReply(bytes(0, 0, 0, 0, 0, 2, 0xaa, 0xbb)), { status: "ok", actualLength: 2, data: bytes(0xaa, 0xbb) });
  assert.equal(codec.decodeReply(bytes(2, 0, 0, 0, 0, 0)).status, "stall");
  assert.throws(() => codec.decodeReply(bytes(9, 0, 0, 0, 0, 0)), /unknown transfer status/);
  assert.throws(() => codec.decodeReply(bytes(0, 0, 0, 0, 0, 3, 1)), /actual_length/);
  assert.equal(codec.decodeCredit(bytes(0, 0, 1, 0)), 256);
  assert.throws(() => codec.decodeCredit(bytes(0, 1)), /4 bytes/);
  assert.deepEqual(codec.encodeCredit(256), bytes(0, 0, 1, 0));
});

test("HELLO is the JSON object the Rust host reads", () => {
  const sent = [];
  new UsbSession((f) => sent.push(codec.decodeFrame(f)));
  assert.equal(sent.length, 1);
  assert.equal(sent[0].op, 0x10);
  assert.deepEqual(json(sent[0].chunk), { versions: [2], capabilities: ["multi_in_flight", "resume"], window: WINDOW });
  assert.deepEqual(json(ascii('{"versions":[2],"capabilities":["resume"],"window":1048576}')).versions, [2]);
});

/** A scripted host: frames the session sent, and a way to answer them. */
function scriptedHost() {
  const sent = [];
  const session = new UsbSession((f) => sent.push(codec.decodeFrame(f)));
  const reply = (op, claim, requestId, body) => {
    for (const f of codec.toFrames(op, claim, requestId, body)) session.receive(f);
  };
  reply(0x10, 0, 0, codec.jsonBody({ versions: [2], capabilities: ["multi_in_flight"], window: 1 << 20 }));
  return { sent, session, reply };
}

async function openOne(host) {
  const opening = host.session.open({ vendor_id: "0525", product_id: "a4a7" });
  const open = host.sent.at(-1);
  assert.equal(open.op, 0x02);
  assert.deepEqual(json(open.chunk), { filter: { vendor_id: "0525", product_id: "a4a7" } });
  host.reply(0x03, 0, open.requestId, codec.jsonBody({ claim_id: 4, device: { bus_id: "b", vendor_id: "0525", product_id: "a4a7" }, resume_token: "aa" }));
  return (await opening).claim_id;
}

test("LIST and OPEN are answered by request id; ERROR rejects the request it names", async () => {
  const host = scriptedHost();
  const listing = host.session.list();
  const list = host.sent.at(-1);
  assert.deepEqual([list.op, list.claim, json(list.chunk)], [0x01, 0, {}]);
  host.reply(0x01, 0, list.requestId, codec.jsonBody({ devices: [{ bus_id: "1-1", vendor_id: "0525", product_id: "a4a0" }] }));
  assert.equal((await listing)[0].bus_id, "1-1");
  const denied = host.session.open({ vendor_id: "dead" });
  host.reply(0xff, 0, host.sent.at(-1).requestId, codec.jsonBody({ code: "denied", message: "denied by ACL policy" }));
  await assert.rejects(denied, (e) => e.code === "denied");
  assert.equal(await openOne(host), 4);
});

test("transfers wait for the host's credit and the client grants credit back in eighths of its window", async () => {
  const host = scriptedHost();
  const claim = await openOne(host);
  const before = host.sent.length;
  // 1 MiB host window: a 1.5 MiB bulk OUT sends 1 MiB worth of frames, then waits.
  const big = host.session.bulk(claim, 0x02, 0, new Uint8Array(1536 * 1024));
  const frames = host.sent.slice(before);
  const chunkBytes = frames.reduce((n, f) => n + f.chunk.length, 0);
  assert.ok(chunkBytes <= 1 << 20, `${chunkBytes} bytes sent beyond the window`);
  assert.ok(frames.every((f) => !f.eof), "the last frame waits for credit");
  host.reply(0x07, claim, 0, codec.encodeCredit(1 << 20));
  assert.ok(host.sent.at(-1).eof, "credit let the rest go");
  assert.equal(host.session.stats(claim).inFlight, 1);
  host.reply(0x05, claim, frames[0].requestId, bytes(0, 0, 0, 0x18, 0, 0));
  assert.equal((await big).actualLength, 1536 * 1024);
  // Replies add up to an eighth of the client's window: a CREDIT goes back.
  const ins = [];
  for (let i = 0; i < 9; i++) ins.push(host.session.bulk(claim, 0x81, 65536));
  const inIds = host.sent.slice(-9).map((f) => f.requestId);
  for (const id of inIds) {
    const reply = new Uint8Array(6 + 65536);
    reply.set(bytes(0, 0, 0, 1, 0, 0));
    host.reply(0x05, claim, id, reply);
  }
  await Promise.all(ins);
  const credit = host.sent.find((f) => f.op === 0x07);
  assert.ok(credit, "a CREDIT was sent");
  assert.equal(credit.claim, claim);
  assert.ok(codec.decodeCredit(credit.chunk) >= WINDOW / 8);
  const stats = host.session.stats(claim);
  assert.equal(stats.bytesIn, 9 * 65536);
  assert.equal(stats.bytesOut, 1536 * 1024);
  assert.equal(stats.inFlight, 0);
});

test("a control round trip is measured, a stall counts as an error, and CLOSED fails what is pending", async () => {
  const host = scriptedHost();
  const claim = await openOne(host);
  const descriptor = host.session.control(claim, { requestType: 0x80, request: 6, value: 0x0100, index: 0 }, 18);
  host.reply(0x04, claim, host.sent.at(-1).requestId, bytes(0, 0, 0, 0, 0, 2, 18, 1));
  assert.deepEqual((await descriptor).data, bytes(18, 1));
  const stalled = host.session.control(claim, { requestType: 0x80, request: 6, value: 0x0300, index: 0 }, 4);
  host.reply(0x04, claim, host.sent.at(-1).requestId, bytes(2, 0, 0, 0, 0, 0));
  assert.equal((await stalled).status, "stall");
  const stats = host.session.stats(claim);
  assert.equal(stats.controlRtts.length, 2);
  assert.equal(stats.errors, 1);
  const waiting = host.session.bulk(claim, 0x81, 64);
  const closing = host.session.close(claim);
  const close = host.sent.at(-1);
  assert.deepEqual([close.op, close.claim, close.chunk.length], [0x08, claim, 0]);
  host.reply(0x09, claim, 0, codec.jsonBody({ reason: "requested" }));
  assert.equal(await closing, "requested");
  await assert.rejects(waiting, (e) => e.code === "closed");
  await assert.rejects(host.session.bulk(claim, 0x81, 64), (e) => e.code === "unknown_claim");
});

test("after a drop the claim resumes over the new transport: HELLO, RESUME with the token and pending ids, unknown ids sent again under the same id", async () => {
  const host = scriptedHost();
  const claims = [];
  const session = host.session;
  const claim = await openOne(host);
  const read = session.bulk(claim, 0x81, 64);
  const readId = host.sent.at(-1).requestId;
  session.detach("dropped");
  const sentBefore = host.sent.length;
  const write = session.bulk(claim, 0x02, 0, ascii("hi"));
  assert.equal(host.sent.length, sentBefore, "nothing goes out while the transport is down");
  await assert.rejects(session.list(), (e) => e.code === "closed");
  const again = [];
  session.resume((f) => again.push(codec.decodeFrame(f)));
  assert.deepEqual(again.map((f) => f.op), [0x10, 0x0a]);
  const writeId = readId + 1;
  assert.deepEqual([again[1].claim, json(again[1].chunk)], [claim, { token: "aa", pending: [readId, writeId] }]);
  host.reply(0x10, 0, 0, codec.jsonBody({ versions: [2], capabilities: ["resume"], window: 1 << 20 }));
  host.reply(0x03, claim, 0, codec.jsonBody({ claim_id: claim, device: { bus_id: "b", vendor_id: "0525", product_id: "a4a7" }, resume_token: "bb", resumed: true, unknown: [writeId], lost: [] }));
  const resent = again.slice(2);
  assert.deepEqual(resent.map((f) => [f.op, f.requestId]), [[0x05, writeId]], "only the request the host never got is sent again");
  host.reply(0x05, claim, readId, bytes(0, 0, 0, 0, 0, 1, 0x41));
  host.reply(0x05, claim, writeId, bytes(0, 0, 0, 0, 0, 2));
  assert.deepEqual((await read).data, bytes(0x41));
  assert.equal((await write).actualLength, 2);
  const stats = session.stats(claim);
  assert.equal(stats.resumes, 1);
  assert.equal(stats.errors, 0);
  // The next drop uses the rotated token; a CLOSE asked for while the link was down is sent
  // again once the claim is back.
  session.detach("dropped again");
  const closing = session.close(claim);
  session.resume((f) => claims.push(codec.decodeFrame(f)));
  assert.equal(json(claims[1].chunk).token, "bb");
  for (const f of codec.toFrames(0x03, claim, 0, codec.jsonBody({ claim_id: claim, resume_token: "ee", resumed: true }))) session.receive(f);
  assert.deepEqual(claims.slice(2).map((f) => [f.op, f.claim]), [[0x08, claim]]);
  host.reply(0x09, claim, 0, codec.jsonBody({ reason: "requested" }));
  assert.equal(await closing, "requested");
  assert.equal(session.stats(claim), null);
});

test("a reply lost in the drop fails its request once, and a rejected RESUME closes the claim", async () => {
  const host = scriptedHost();
  const resumed = [];
  const closed = [];
  const session = new UsbSession((f) => host.sent.push(codec.decodeFrame(f)), {
    onResumed: (r) => resumed.push(r),
    onClosed: (claim, reason) => closed.push([claim, reason]),
  });
  const reply = (op, claim, requestId, body) => {
    for (const f of codec.toFrames(op, claim, requestId, body)) session.receive(f);
  };
  reply(0x10, 0, 0, codec.jsonBody({ versions: [2], capabilities: [], window: 1 << 20 }));
  const opening = session.open({ vendor_id: "0525" });
  reply(0x03, 0, host.sent.at(-1).requestId, codec.jsonBody({ claim_id: 2, device: { bus_id: "b", vendor_id: "0525", product_id: "a4a0" }, resume_token: "cc" }));
  const claim = (await opening).claim_id;
  const out = session.bulk(claim, 0x02, 0, ascii("once"));
  const outId = host.sent.at(-1).requestId;
  session.detach("dropped");
  session.resume((f) => host.sent.push(codec.decodeFrame(f)));
  reply(0x03, claim, 0, codec.jsonBody({ claim_id: claim, device: { bus_id: "b", vendor_id: "0525", product_id: "a4a0" }, resume_token: "dd", resumed: true, unknown: [], lost: [outId] }));
  await assert.rejects(out, (e) => e.code === "lost");
  assert.equal(host.sent.filter((f) => f.op === 0x05).length, 1, "a lost request is never sent twice");
  assert.deepEqual(resumed, [{ claim, ok: true }]);
  session.detach("dropped");
  session.resume((f) => host.sent.push(codec.decodeFrame(f)));
  reply(0xff, claim, 0, codec.jsonBody({ code: "resume_rejected", message: "token expired" }));
  assert.deepEqual(resumed.at(-1), { claim, ok: false, reason: "token expired" });
  assert.deepEqual(closed, [[claim, "resume_rejected"]]);
  assert.equal(session.stats(claim), null);
});

test("percentiles are taken from the samples", () => {
  assert.equal(percentile([], 0.5), null);
  assert.equal(percentile([5, 1, 3], 0.5), 3);
  assert.equal(percentile([...Array(100).keys()], 0.99), 98);
});
