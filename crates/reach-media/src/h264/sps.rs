//! Reads the WebCodecs codec string (`avc1.PPCCLL`) from an H.264 sequence parameter set.

/// The `avc1.PPCCLL` string (profile, constraint flags, level in hex) of the first SPS
/// in an Annex-B stream, or `None` when there is none.
pub fn codec_string_from_annexb(stream: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 3 < stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            let nal = &stream[i + 3..];
            if nal.first().is_some_and(|h| h & 0x1f == 7) && nal.len() >= 4 {
                return Some(format!("avc1.{:02X}{:02X}{:02X}", nal[1], nal[2], nal[3]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codec_string_comes_from_the_sps_after_a_start_code() {
        let stream = [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x28, 0xAA, 0, 0, 1, 0x68, 1];
        assert_eq!(
            codec_string_from_annexb(&stream).as_deref(),
            Some("avc1.42C028")
        );
    }

    #[test]
    fn a_stream_without_sps_has_no_codec_string() {
        assert_eq!(codec_string_from_annexb(&[0, 0, 1, 0x65, 1, 2, 3, 4]), None);
        assert_eq!(codec_string_from_annexb(&[0, 0, 1, 0x67]), None);
    }
}
