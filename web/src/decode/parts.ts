// Frames too large for one message arrive in parts (`VideoFrame.part` from 0, `more` on all but
// the last; same `sequence`). The agent splits every frame over 1 MiB of payload: a noisy 1080p
// raw keyframe is ~8 MB, above the relay's 4 MiB message cap. Parts are gathered here and drawn
// together once the last one is in, so a split frame never shows half-updated.
import type { reach } from "../gen/reach.js";

/** Most parts one frame may have. */
const MAX_PARTS = 1024;
/** Largest reassembled payload: a lossless 8K frame that did not compress. */
const MAX_BYTES = 8192 * 8192 * 4 + 16 * 1024 * 1024;

export type Assembled =
  | { kind: "complete"; frame: reach.v1.IVideoFrame }
  | { kind: "waiting" }
  /** Parts went missing or broke a bound: the canvas no longer matches; ask for a keyframe. */
  | { kind: "lost"; reason: string };

function payloadOf(frame: reach.v1.IVideoFrame): number {
  const tiles = (frame.tiles ?? []).reduce((sum, t) => sum + (t.zstdBgra?.length ?? 0), 0);
  return tiles + (frame.bitstream?.length ?? 0);
}

function sameFrame(a: reach.v1.IVideoFrame, b: reach.v1.IVideoFrame): boolean {
  return (
    Number(a.sequence ?? 0) === Number(b.sequence ?? 0) &&
    (a.codec ?? 0) === (b.codec ?? 0) &&
    (a.width ?? 0) === (b.width ?? 0) &&
    (a.height ?? 0) === (b.height ?? 0) &&
    (a.screen ?? 0) === (b.screen ?? 0)
  );
}

export class FrameAssembler {
  private first: reach.v1.IVideoFrame | null = null;
  private tiles: reach.v1.ITile[] = [];
  private bitstream: Uint8Array[] = [];
  private nextPart = 0;
  private bytes = 0;

  /** Takes one received frame or part. */
  push(part: reach.v1.IVideoFrame): Assembled {
    const index = part.part ?? 0;
    if (!this.first) return this.start(part);
    if (index === 0) {
      this.reset();
      this.start(part);
      return { kind: "lost", reason: "a frame ended before its last part" };
    }
    if (!sameFrame(this.first, part) || index !== this.nextPart) {
      this.reset();
      return { kind: "lost", reason: "a part of another frame or out of order" };
    }
    this.bytes += payloadOf(part);
    if (this.bytes > MAX_BYTES || index >= MAX_PARTS) {
      this.reset();
      return { kind: "lost", reason: "frame larger than the viewer accepts" };
    }
    this.tiles.push(...(part.tiles ?? []));
    if (part.bitstream?.length) this.bitstream.push(part.bitstream);
    this.nextPart += 1;
    if (part.more) return { kind: "waiting" };
    const frame: reach.v1.IVideoFrame = { ...this.first, tiles: this.tiles, bitstream: concat(this.bitstream), more: false, part: 0 };
    this.reset();
    return { kind: "complete", frame };
  }

  private start(part: reach.v1.IVideoFrame): Assembled {
    if ((part.part ?? 0) !== 0) return { kind: "lost", reason: "a part without the start of its frame" };
    if (!part.more) return { kind: "complete", frame: part };
    this.first = part;
    this.tiles = [...(part.tiles ?? [])];
    this.bitstream = part.bitstream?.length ? [part.bitstream] : [];
    this.nextPart = 1;
    this.bytes = payloadOf(part);
    return { kind: "waiting" };
  }

  private reset(): void {
    this.first = null;
    this.tiles = [];
    this.bitstream = [];
    this.nextPart = 0;
    this.bytes = 0;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] ?? new Uint8Array();
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
