//! The frame decoders, on whole inputs and on the same input cut into
//! pieces: any input must give the same frames (and the same error, if
//! any) however it is split, and never panic. Frames that decode must
//! re-encode to the bytes they came from. The hub's way of reading a
//! `SEND` (in place, as a `SendPayload`) must accept exactly what decoding
//! into a `SendFrame` does, as the same message.

#![no_main]

use bytes::BytesMut;
use chinwag_protocol::{
    ClientFrame, ClientFrameOf, FrameCodec, SendPayload, ServerFrame, WireFrame, encode_frame,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// A small limit, so that oversized prefixes are exercised too.
const MAX: usize = 4096;

/// Decodes `input` fed in `pieces`; returns the frames, and the error's code
/// if decoding stopped on one.
fn decode_all<F: WireFrame>(input: &[u8], cuts: &[usize]) -> (Vec<F>, Option<u16>) {
    let mut codec = FrameCodec::<F>::new(MAX);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        buf.extend_from_slice(&input[start..cut]);
        start = cut;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.code().0)),
            }
        }
    }
    (frames, None)
}

fn check<F: WireFrame + PartialEq + std::fmt::Debug>(input: &[u8], cuts: &[usize]) {
    let whole = decode_all::<F>(input, &[]);
    let split = decode_all::<F>(input, cuts);
    assert_eq!(whole, split, "splitting the input changed the result");
    // What decodes re-encodes to the same bytes, prefix included.
    let mut offset = 0;
    for frame in &whole.0 {
        let bytes = encode_frame(frame, MAX).expect("a decoded frame re-encodes");
        assert_eq!(&input[offset..offset + bytes.len()], &bytes[..]);
        offset += bytes.len();
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how many cut points the next bytes give.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    if rest.len() < n * 2 {
        return;
    }
    let (cut_bytes, input) = rest.split_at(n * 2);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    check::<ClientFrame>(input, &cuts);
    check::<ClientFrameOf<SendPayload>>(input, &cuts);
    check::<ServerFrame>(input, &cuts);

    let (owned, owned_error) = decode_all::<ClientFrame>(input, &[]);
    let (in_place, in_place_error) = decode_all::<ClientFrameOf<SendPayload>>(input, &[]);
    assert_eq!(
        owned_error, in_place_error,
        "the two readings disagree on the error"
    );
    assert_eq!(
        owned.len(),
        in_place.len(),
        "the two readings disagree on the frames"
    );
    for (owned, in_place) in owned.iter().zip(&in_place) {
        match (owned, in_place) {
            (ClientFrame::Send(owned), ClientFrameOf::Send(in_place)) => {
                assert_eq!(owned, &in_place.to_frame());
            }
            (ClientFrame::Send(_), _) | (_, ClientFrameOf::Send(_)) => {
                panic!("only one reading found a SEND")
            }
            _ => {}
        }
    }
});
