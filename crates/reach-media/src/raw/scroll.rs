//! Scroll detection: finds a vertical move of screen content between two frames so the
//! raw encoder can send one copy instruction plus the newly exposed strip instead of
//! re-sending every pixel of a scrolling terminal or a dragged window.
//!
//! Rows of the changed area are hashed in both frames; rows that are unique in the old
//! frame vote for the offset at which they reappear in the new one; the winning offset
//! is verified byte for byte over the longest run of matching rows.

use std::collections::HashMap;

use crate::frame::{Frame, Rect};

/// Fewest rows that must vote for an offset before it is tried.
const MIN_VOTES: usize = 4;
/// Fewest contiguous moved rows worth a copy instruction.
const MIN_RUN_ROWS: u32 = 24;

/// Content of `src` in the old frame now sits at row `dst_y` (same columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerticalMove {
    pub(crate) src: Rect,
    pub(crate) dst_y: u32,
}

/// Looks for the largest vertical move inside `area` from `old` to `new`.
pub(crate) fn detect_vertical_move(old: &Frame, new: &Frame, area: Rect) -> Option<VerticalMove> {
    let old_rows = row_hashes(old, area);
    let new_rows = row_hashes(new, area);
    let offset = vote_offset(&old_rows, &new_rows)?;
    let (start, len) = longest_run(old, new, area, &old_rows, &new_rows, offset)?;
    let src_y = (i64::from(area.y) + start as i64 + offset) as u32;
    Some(VerticalMove {
        src: Rect::new(area.x, src_y, area.width, len),
        dst_y: area.y + start as u32,
    })
}

fn row_hashes(frame: &Frame, area: Rect) -> Vec<u64> {
    (area.y..area.bottom())
        .map(|y| hash_bytes(frame.row_span(area.x, y, area.width)))
        .collect()
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(29);
    }
    for &b in words.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The offset (old row index minus new row index) most changed rows agree on.
fn vote_offset(old_rows: &[u64], new_rows: &[u64]) -> Option<i64> {
    let mut unique: HashMap<u64, Option<usize>> = HashMap::with_capacity(old_rows.len());
    for (i, h) in old_rows.iter().enumerate() {
        unique
            .entry(*h)
            .and_modify(|slot| *slot = None)
            .or_insert(Some(i));
    }
    let mut votes: HashMap<i64, usize> = HashMap::new();
    for (i, h) in new_rows.iter().enumerate() {
        if old_rows[i] == *h {
            continue;
        }
        if let Some(Some(j)) = unique.get(h) {
            *votes.entry(*j as i64 - i as i64).or_default() += 1;
        }
    }
    votes
        .into_iter()
        .filter(|&(offset, count)| offset != 0 && count >= MIN_VOTES)
        .max_by_key(|&(offset, count)| (count, -offset.abs()))
        .map(|(offset, _)| offset)
}

/// The longest run of new rows equal to old rows shifted by `offset`, verified by bytes.
fn longest_run(
    old: &Frame,
    new: &Frame,
    area: Rect,
    old_rows: &[u64],
    new_rows: &[u64],
    offset: i64,
) -> Option<(usize, u32)> {
    let matches = |i: usize| -> bool {
        let j = i as i64 + offset;
        if j < 0 || j as usize >= old_rows.len() || old_rows[j as usize] != new_rows[i] {
            return false;
        }
        let (old_y, new_y) = (area.y + j as u32, area.y + i as u32);
        old.row_span(area.x, old_y, area.width) == new.row_span(area.x, new_y, area.width)
    };
    let (mut best, mut run_start, mut run_len) = (None::<(usize, u32)>, 0, 0u32);
    for i in 0..new_rows.len() {
        if matches(i) {
            if run_len == 0 {
                run_start = i;
            }
            run_len += 1;
            if best.is_none_or(|(_, len)| run_len > len) {
                best = Some((run_start, run_len));
            }
        } else {
            run_len = 0;
        }
    }
    best.filter(|&(_, len)| len >= MIN_RUN_ROWS)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A page of pseudo-text: every row differs from its neighbours.
    pub(crate) fn text_page(width: u32, height: u32, scroll: u32) -> Frame {
        let mut frame = Frame::new(width, height).unwrap();
        for y in 0..height {
            let line = y + scroll;
            for (x, px) in frame
                .row_span_mut(0, y, width)
                .chunks_exact_mut(4)
                .enumerate()
            {
                let ink =
                    (x as u32 * 7 + line * 13) % 11 < 3 || (x as u32 ^ line).is_multiple_of(17);
                px.copy_from_slice(if ink {
                    &[20, 20, 20, 255]
                } else {
                    &[240, 240, 240, 255]
                });
            }
        }
        frame
    }

    #[test]
    fn scrolling_text_up_by_some_rows_is_found_as_one_move() {
        let old = text_page(256, 192, 0);
        let new = text_page(256, 192, 16);
        let found = detect_vertical_move(&old, &new, old.bounds()).unwrap();
        assert_eq!(found.src, Rect::new(0, 16, 256, 176));
        assert_eq!(found.dst_y, 0);
    }

    #[test]
    fn unrelated_content_yields_no_move() {
        let old = text_page(128, 128, 0);
        let mut new = Frame::new(128, 128).unwrap();
        new.data_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * 31 % 251) as u8);
        assert_eq!(detect_vertical_move(&old, &new, old.bounds()), None);
    }
}
