//! Client frames as tests build them.

use bytes::BytesMut;
use chinwag_protocol::{
    AccountAction, AccountRequest, ClientCodec, ClientFrame, Hello, PROTOCOL_VERSION, Recipients,
    SendFrame, encode_frame,
};
use tokio_util::codec::Encoder;

/// `HELLO` with a nickname that need not be valid UTF-8, asking for the
/// `HELLO` options `options` if given.
pub fn hello_bytes(nick: &[u8], options: Option<u32>) -> ClientFrame {
    ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.to_vec().into(),
        options,
        password: None,
    })
}

/// `HELLO` without options.
pub fn hello(nick: &str) -> ClientFrame {
    hello_bytes(nick.as_bytes(), None)
}

/// `HELLO` asking for the options `options` (`NO_PRESENCE`, `ACK_RUNS`...).
pub fn hello_with_options(nick: &str, options: u32) -> ClientFrame {
    hello_bytes(nick.as_bytes(), Some(options))
}

/// `HELLO` logging in to an account with `password`, asking for `options`.
pub fn login(nick: &str, password: &str, options: u32) -> ClientFrame {
    ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.as_bytes().to_vec().into(),
        options: Some(options),
        password: Some(password.to_owned()),
    })
}

/// An `ACCOUNT` request (`new_password` only matters to a password change).
pub fn account(
    action: AccountAction,
    nick: &str,
    password: &str,
    new_password: &str,
) -> ClientFrame {
    ClientFrame::Account(AccountRequest {
        action,
        nick: nick.to_owned(),
        password: password.to_owned(),
        new_password: new_password.to_owned(),
    })
}

/// Named recipients.
pub fn users(names: &[&str]) -> Recipients {
    Recipients::Users(names.iter().map(|&name| name.to_owned()).collect())
}

/// A `SEND` of `text` to `to` with client id `id`.
pub fn send_frame(id: u64, to: Recipients, text: impl Into<String>) -> ClientFrame {
    ClientFrame::Send(SendFrame {
        id,
        to,
        text: text.into(),
    })
}

/// A `SEND` to the named users, or to everyone if `to` is empty.
pub fn send(id: u64, to: &[&str], text: impl Into<String>) -> ClientFrame {
    let to = if to.is_empty() {
        Recipients::Everyone
    } else {
        users(to)
    };
    send_frame(id, to, text)
}

/// A client frame as it goes on the wire, length prefix included, with no
/// size limit (tests also build frames the hub must refuse).
///
/// # Panics
/// If the frame cannot be encoded at all.
pub fn encode(frame: &ClientFrame) -> Vec<u8> {
    encode_frame(frame, usize::MAX)
        .expect("the frame encodes")
        .to_vec()
}

/// Frames encoded one after another, to be written at once.
///
/// # Panics
/// If a frame is larger than the client codec's limit.
pub fn encode_frames(frames: &[ClientFrame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        ClientCodec::default()
            .encode(frame, &mut out)
            .expect("the frame encodes");
    }
    out
}

/// A frame as it goes on the wire: the 4-byte length prefix, then
/// `payload`, whatever it holds.
///
/// # Panics
/// If `payload` is 4 GiB or more.
pub fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a payload under 4 GiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}
