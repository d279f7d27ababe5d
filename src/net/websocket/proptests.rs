//! Stable-toolchain twins of the `ws_frames` and `connect` fuzz targets: arbitrary
//! bytes never panic, and the frame decoder gives the same result for any split.

use proptest::prelude::*;

use super::frames::{client_frame, FrameDecoder};
use super::handshake::parse_request;
use crate::protocol::info::ConnectInfo;
use soketto::base::OpCode;

type Decoded = (Vec<u8>, Vec<super::frames::Control>, Option<String>);

fn decode(chunks: &[&[u8]], compress: bool) -> Decoded {
    let mut d = FrameDecoder::new(compress, 1 << 16);
    let (mut out, mut ctrl) = (Vec::new(), Vec::new());
    for c in chunks {
        if let Err(e) = d.feed(c, &mut out, &mut ctrl) {
            return (out, ctrl, Some(e.reason));
        }
    }
    (out, ctrl, None)
}

proptest! {
    #[test]
    fn arbitrary_frames_split_anywhere(data in proptest::collection::vec(any::<u8>(), 0..512),
                                       split in any::<usize>(), compress in any::<bool>()) {
        let _ = parse_request(&data);
        let at = split % (data.len() + 1);
        prop_assert_eq!(decode(&[&data], compress), decode(&[&data[..at], &data[at..]], compress));
    }

    #[test]
    fn valid_frames_give_the_stream(payloads in proptest::collection::vec(
                                        proptest::collection::vec(any::<u8>(), 0..300), 1..6),
                                    mask in any::<u32>(), split in any::<usize>()) {
        let mut wire = Vec::new();
        for p in &payloads {
            client_frame(OpCode::Binary, p, mask, &mut wire);
        }
        let at = split % (wire.len() + 1);
        let (out, ctrl, err) = decode(&[&wire[..at], &wire[at..]], false);
        prop_assert_eq!(out, payloads.concat());
        prop_assert!(ctrl.is_empty());
        prop_assert_eq!(err, None);
    }

    #[test]
    fn connect_json_and_redaction(data in proptest::collection::vec(any::<u8>(), 0..256),
                                  pass in "[a-z]{8,16}") {
        let _ = serde_json::from_slice::<ConnectInfo>(&data);
        let _ = crate::auth::redact_connect(&data);
        let json = format!("{{\"user\":\"u\",\"pass\":\"{pass}\",\"auth_token\":\"{pass}\"}}");
        prop_assert!(serde_json::from_str::<ConnectInfo>(&json).is_ok());
        let red = crate::auth::redact_connect(json.as_bytes());
        prop_assert!(!red.contains(&pass), "{}", red);
    }
}
