// Raw codec: each tile is zstd-compressed BGRA rows, drawn where the agent says it changed.

import { decompress } from "fzstd";
import type { reach } from "../gen/reach.js";

/** Largest tile we accept (a full 4K keyframe): bounds the decompressed size before allocating. */
const MAX_TILE_PIXELS = 3840 * 2160;

/** Applies content moves (scrolling, dragged windows) in order; source and destination may overlap. */
export function applyCopies(ctx: CanvasRenderingContext2D, copies: reach.v1.ICopyRect[]): number {
  let applied = 0;
  for (const copy of copies) {
    const width = copy.width ?? 0;
    const height = copy.height ?? 0;
    if (!width || !height) continue;
    // getImageData snapshots the source first, so overlapping moves behave like memmove.
    const pixels = ctx.getImageData(copy.srcX ?? 0, copy.srcY ?? 0, width, height);
    ctx.putImageData(pixels, copy.dstX ?? 0, copy.dstY ?? 0);
    applied += 1;
  }
  return applied;
}

export function drawRawTiles(ctx: CanvasRenderingContext2D, tiles: reach.v1.ITile[]): number {
  let drawn = 0;
  for (const tile of tiles) {
    const width = tile.width ?? 0;
    const height = tile.height ?? 0;
    if (!width || !height || width * height > MAX_TILE_PIXELS || !tile.zstdBgra) continue;
    const expected = width * height * 4;
    let bgra: Uint8Array;
    try {
      bgra = decompress(tile.zstdBgra, new Uint8Array(expected));
    } catch {
      continue;
    }
    if (bgra.length !== expected) continue;
    const image = new ImageData(width, height);
    const rgba = image.data;
    for (let i = 0; i < expected; i += 4) {
      rgba[i] = bgra[i + 2] ?? 0;
      rgba[i + 1] = bgra[i + 1] ?? 0;
      rgba[i + 2] = bgra[i] ?? 0;
      rgba[i + 3] = 255;
    }
    ctx.putImageData(image, tile.x ?? 0, tile.y ?? 0);
    drawn += 1;
  }
  return drawn;
}
