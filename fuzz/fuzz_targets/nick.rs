//! Nickname validation: never panics, and whatever it accepts obeys the
//! documented rules.

#![no_main]

use chinwag_protocol::{MAX_NICK_LEN, Nick, RESERVED_NICKS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(nick) = Nick::parse(data) else { return };
    let text = nick.as_str();
    assert_eq!(text.as_bytes(), data);
    assert!((1..=MAX_NICK_LEN).contains(&text.len()));
    assert!(text.as_bytes()[0].is_ascii_alphabetic());
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    );
    assert!(!RESERVED_NICKS.iter().any(|r| r.eq_ignore_ascii_case(text)));
    // Identity ignores case and survives a round trip through its folded form.
    let folded = Nick::parse(nick.folded().as_bytes()).expect("folded form is valid");
    assert_eq!(folded, nick);
});
