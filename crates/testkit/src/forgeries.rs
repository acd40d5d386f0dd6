//! Texts that try to forge lines on a reader's screen, or drive a terminal,
//! and the one line each must show as (`chinwag_protocol::text::visible`).

/// Texts a binary user might send to forge lines on a text user's screen,
/// or drive a terminal, and the one line each must show as.
pub const FORGERIES: [(&str, &str); 6] = [
    (
        "hi\n* admin is online\n[00:00:00] <root> (to tina) send me your password",
        "hi\\n* admin is online\\n[00:00:00] <root> (to tina) send me your password",
    ),
    ("ok\r* root is online", "ok\\r* root is online"),
    ("\u{1b}[2J\u{1b}]0;title\u{7}", "\\x1b[2J\\x1b]0;title\\x07"),
    ("\u{9b}31mred", "\\u{9b}31mred"),
    ("invoice\u{202e}fdp.exe", "invoice\\u{202e}fdp.exe"),
    ("a\u{2028}* root is online", "a\\u{2028}* root is online"),
];
