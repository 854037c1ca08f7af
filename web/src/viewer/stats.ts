// Stream statistics for the overlay: frames per second, bitrate and frame age over 1 s windows.

/** Nothing drawn for this long reads as "idle" (a still remote screen, not a stalled stream). */
const IDLE_AFTER_MS = 1500;

export class StreamStats {
  codec = "—";
  private frames = 0;
  private bytes = 0;
  private windowStart = performance.now();
  private lastAgeMs: number | null = null;
  fps = 0;
  kbps = 0;
  framesDrawn = 0;
  private lastFrameAt: number | null = null;

  onFrame(byteLength: number, ptsMicros: number): void {
    this.frames += 1;
    this.lastFrameAt = performance.now();
    this.bytes += byteLength;
    // Agents stamp frames with Unix-epoch microseconds; on a shared clock that gives frame age.
    if (ptsMicros > 1e15) this.lastAgeMs = Math.max(0, Date.now() - ptsMicros / 1000);
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      const seconds = (now - this.windowStart) / 1000;
      this.fps = this.frames / seconds;
      this.kbps = (this.bytes * 8) / 1000 / seconds;
      this.frames = 0;
      this.bytes = 0;
      this.windowStart = now;
    }
  }

  /** "idle" whenever nothing is arriving: before the first frame, when nothing changed on the
   * remote screen for a while, and while the last window measured no frame. Never "0 fps". */
  describe(): string {
    const quiet = this.lastFrameAt === null || performance.now() - this.lastFrameAt > IDLE_AFTER_MS;
    if (quiet || this.fps < 0.5) return `${this.codec === "—" ? "" : `${this.codec} · `}idle`;
    const age = this.lastAgeMs === null ? "" : ` · ${this.lastAgeMs.toFixed(0)} ms`;
    return `${this.codec} · ${this.fps.toFixed(0)} fps · ${this.kbps.toFixed(0)} kbit/s${age}`;
  }
}
