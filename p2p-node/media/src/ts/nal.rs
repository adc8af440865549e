//! Keyframe recognition in elementary-stream bytes: H.264 IDR and H.265
//! IRAP NAL units, MPEG-2 I pictures.

use super::*;

/// Scans elementary stream bytes from `*pos` for the first picture and says
/// whether it is a keyframe; `None` means no picture was found yet, in which
/// case `*pos` is where to resume once more bytes have arrived.
pub(crate) fn scan_keyframe(codec: VideoCodec, es: &[u8], pos: &mut usize) -> Option<bool> {
    let mut i = *pos;
    while let Some(&[a, b, c]) = es.get(i..).and_then(|s| s.first_chunk::<3>()) {
        if a != 0 || b != 0 || c != 1 {
            i += 1;
            continue;
        }
        let Some(&header) = es.get(i + 3) else {
            break;
        };
        match codec {
            VideoCodec::H264 => {
                let nal_type = header & 0x1F;
                if header & 0x80 == 0 && (1..=5).contains(&nal_type) {
                    // First VCL NAL unit: an IDR slice or not.
                    *pos = i;
                    return Some(nal_type == 5);
                }
            }
            VideoCodec::H265 => {
                let nal_type = (header >> 1) & 0x3F;
                if header & 0x80 == 0 && nal_type < 32 {
                    *pos = i;
                    return Some((16..=21).contains(&nal_type));
                }
            }
            VideoCodec::Mpeg2 => {
                if header == 0x00 {
                    // picture_start_code: 10 bits temporal_reference, then 3 bits picture_coding_type.
                    let Some(&coding) = es.get(i + 5) else {
                        break;
                    };
                    *pos = i;
                    return Some((coding >> 3) & 0x07 == 1);
                }
            }
        }
        i += 3;
    }
    *pos = i;
    None
}
