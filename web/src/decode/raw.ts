// Raw codec: each tile is zstd-compressed BGRA rows, drawn where the agent says it changed.

import { decompress } from "fzstd";
import type { reach } from "../gen/reach.js";

/** Largest tile we accept: bounds the decompressed size before allocating. */
const MAX_TILE_PIXELS = 512 * 512;

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
