//! The manual page and the shell completions of `chinwag` that the .deb
//! carries (`dist/man`, `dist/completions`, assets of the `chinwagd`
//! crate's `[package.metadata.deb]`) are what `chinwag man` and `chinwag
//! completions SHELL` print now. When the commands or their help change,
//! this fails and says the command that regenerates them (the daemon's
//! too):
//!
//! ```text
//! CHINWAG_REGENERATE=1 cargo test -p chinwagd -p chinwag-client --test dist
//! ```

#[test]
fn the_committed_manual_page_and_completions_are_what_chinwag_prints() {
    chinwag_testkit::assert_generated(
        env!("CARGO_BIN_EXE_chinwag"),
        &[
            (&["man"], "dist/man/chinwag.1"),
            (&["completions", "bash"], "dist/completions/chinwag.bash"),
            (&["completions", "zsh"], "dist/completions/_chinwag"),
            (&["completions", "fish"], "dist/completions/chinwag.fish"),
        ],
    );
}
