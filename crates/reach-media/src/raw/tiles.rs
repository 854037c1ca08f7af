//! The tile grid: which tiles an area touches, which of them changed (cropped to the
//! rows that differ), and merging neighbours into wider tiles.

use crate::frame::{Frame, Rect};
use crate::limits::{MAX_RAW_TILE_WIDTH, TILE_SIZE};

/// The grid cells overlapping `area`, clipped to `bounds`.
pub(super) fn tiles_in(area: Rect, bounds: Rect) -> Vec<Rect> {
    let Some(area) = area.intersect(&bounds) else {
        return Vec::new();
    };
    let (first_col, last_col) = (area.x / TILE_SIZE, (area.right() - 1) / TILE_SIZE);
    let (first_row, last_row) = (area.y / TILE_SIZE, (area.bottom() - 1) / TILE_SIZE);
    let mut tiles = Vec::new();
    for row in first_row..=last_row {
        for col in first_col..=last_col {
            let cell = Rect::new(col * TILE_SIZE, row * TILE_SIZE, TILE_SIZE, TILE_SIZE);
            tiles.extend(cell.intersect(&bounds));
        }
    }
    tiles
}

/// Sorts grid cells top-to-bottom, left-to-right and drops repeats.
pub(super) fn dedup_tiles(tiles: impl Iterator<Item = Rect>) -> Vec<Rect> {
    let mut all: Vec<Rect> = tiles.collect();
    all.sort_by_key(|t| (t.y, t.x));
    all.dedup();
    all
}

/// The candidates whose pixels differ between `sent` and `frame`, each cropped to the
/// rows that differ.
pub(super) fn changed_tiles(sent: &Frame, frame: &Frame, candidates: Vec<Rect>) -> Vec<Rect> {
    candidates
        .into_iter()
        .filter_map(|t| {
            let differs =
                |y: &u32| sent.row_span(t.x, *y, t.width) != frame.row_span(t.x, *y, t.width);
            let first = (t.y..t.bottom()).find(differs)?;
            let last = (first..t.bottom()).rev().find(differs)?;
            Some(Rect::new(t.x, first, t.width, last - first + 1))
        })
        .collect()
}

/// Joins horizontally adjacent tiles with the same rows, up to the widest tile allowed.
/// Input must be sorted by `(y, x)`.
pub(super) fn merge_rows(tiles: Vec<Rect>) -> Vec<Rect> {
    let mut merged: Vec<Rect> = Vec::with_capacity(tiles.len());
    for tile in tiles {
        match merged.last_mut() {
            Some(last)
                if last.y == tile.y
                    && last.height == tile.height
                    && last.right() == tile.x
                    && last.width + tile.width <= MAX_RAW_TILE_WIDTH =>
            {
                last.width += tile.width;
            }
            _ => merged.push(tile),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_tiles_on_the_same_rows_merge_up_to_the_width_limit() {
        let row: Vec<Rect> = (0..10).map(|i| Rect::new(i * 64, 0, 64, 16)).collect();
        let merged = merge_rows(row);
        assert_eq!(
            merged,
            vec![Rect::new(0, 0, 512, 16), Rect::new(512, 0, 128, 16)]
        );
        let uneven = vec![Rect::new(0, 0, 64, 16), Rect::new(64, 0, 64, 8)];
        assert_eq!(merge_rows(uneven.clone()), uneven);
    }

    #[test]
    fn a_changed_tile_is_cropped_to_the_rows_that_differ() {
        let old = Frame::new(64, 64).unwrap();
        let mut new = old.clone();
        new.row_span_mut(3, 10, 2).fill(9);
        new.row_span_mut(3, 20, 2).fill(9);
        let changed = changed_tiles(&old, &new, vec![Rect::new(0, 0, 64, 64)]);
        assert_eq!(changed, vec![Rect::new(0, 10, 64, 11)]);
    }
}
