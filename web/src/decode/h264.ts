// H.264 through WebCodecs. The agent sends Annex-B access units; the decoder is configured from
// the first keyframe's SPS, and inter frames before a keyframe are never fed to it.

/** `avc1.PPCCLL` from the first SPS NAL unit of an Annex-B access unit, or null. */
export function codecStringFromAnnexB(bytes: Uint8Array): string | null {
  for (let i = 0; i + 4 < bytes.length; i++) {
    const startCode3 = bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1;
    if (!startCode3) continue;
    const nal = i + 3;
    if (((bytes[nal] ?? 0) & 0x1f) === 7 && nal + 3 < bytes.length) {
      const hex = (b: number | undefined) => (b ?? 0).toString(16).padStart(2, "0").toUpperCase();
      return `avc1.${hex(bytes[nal + 1])}${hex(bytes[nal + 2])}${hex(bytes[nal + 3])}`;
    }
  }
  return null;
}

export class H264Decoder {
  private decoder: VideoDecoder | null = null;
  private codec: string | null = null;
  private pending: VideoFrame | null = null;
  private scheduled = false;
  /** Access units fed to the decoder whose picture has not come out yet. */
  private queued = 0;
  /** Frames decoded but replaced by a newer one before they could be drawn. */
  dropped = 0;

  constructor(
    private readonly draw: (frame: VideoFrame) => void,
    private readonly onError: (message: string) => void,
  ) {}

  /** Feeds one access unit. Returns false when it had to be skipped (no keyframe yet). */
  decode(bitstream: Uint8Array, keyframe: boolean, timestampMicros: number): boolean {
    if (keyframe) {
      const codec = codecStringFromAnnexB(bitstream);
      if (codec && codec !== this.codec) this.configure(codec);
    }
    const decoder = this.decoder;
    if (!decoder || decoder.state !== "configured") return false;
    if (!keyframe && decoder.decodeQueueSize > 4) {
      return false; // Behind: wait for the next keyframe rather than queue stale frames.
    }
    decoder.decode(new EncodedVideoChunk({ type: keyframe ? "key" : "delta", timestamp: timestampMicros, data: bitstream }));
    this.queued += 1;
    return true;
  }

  /**
   * Whether a picture is still on its way to the canvas (decoding or waiting for the next
   * paint). Raw tiles that arrive meanwhile are newer than that picture and must be drawn after
   * it, or it would paint over them.
   */
  get busy(): boolean {
    return this.queued > 0 || this.pending !== null;
  }

  close(): void {
    this.pending?.close();
    this.pending = null;
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
  }

  private configure(codec: string): void {
    this.close();
    this.queued = 0;
    this.codec = codec;
    this.decoder = new VideoDecoder({
      output: (frame) => {
        this.queued = Math.max(0, this.queued - 1);
        this.present(frame);
      },
      error: (error) => {
        this.queued = 0;
        this.onError(`H.264 decoder failed: ${error.message}`);
      },
    });
    this.decoder.configure({ codec, optimizeForLatency: true });
  }

  /** Latency over smoothness: only the newest decoded frame is drawn on the next paint. */
  private present(frame: VideoFrame): void {
    if (this.pending) {
      this.pending.close();
      this.dropped += 1;
    }
    this.pending = frame;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const next = this.pending;
      this.pending = null;
      if (next) {
        this.draw(next);
        next.close();
      }
    });
  }
}
