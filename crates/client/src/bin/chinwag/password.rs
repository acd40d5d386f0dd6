//! Where passwords come from: `--password-stdin` (the first line of
//! standard input; for `account passwd`, the current password then the new
//! one), the environment (`CHINWAG_PASSWORD`, and `CHINWAG_NEW_PASSWORD`
//! for `account passwd`), or, at a terminal, a prompt that does not echo
//! (`rpassword`). Never a command-line argument: other users of the
//! machine can read those (`ps`).

use std::io::{self, BufRead, IsTerminal as _};

use anyhow::{Context as _, bail};

/// The environment variable holding the password.
pub(crate) const ENV: &str = "CHINWAG_PASSWORD";
/// The environment variable holding the new password for `account passwd`.
pub(crate) const NEW_ENV: &str = "CHINWAG_NEW_PASSWORD";

/// The shortest and longest passwords a hub accepts for an account, in bytes.
const LENGTHS: std::ops::RangeInclusive<usize> = 8..=1024;

/// How to tell the program a password without a terminal, for errors.
pub(crate) const HOW: &str = "give it in the CHINWAG_PASSWORD environment variable, or on standard input with --password-stdin";

/// One line of `input`, without its line ending; an error at the end of
/// the input or for an empty line (`what` names the password for it).
pub(crate) fn read_line(input: &mut impl BufRead, what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    if read == 0 {
        bail!("standard input ended before the {what}");
    }
    let line = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if line.is_empty() {
        bail!("the {what} on standard input is empty");
    }
    Ok(line.to_owned())
}

/// The password given without asking: the first line of `input` with
/// `--password-stdin`, else the environment's value (`env`) if it is not
/// empty; `None` if neither.
pub(crate) fn given(
    from_stdin: bool,
    env: Option<String>,
    input: &mut impl BufRead,
) -> anyhow::Result<Option<String>> {
    if from_stdin {
        return read_line(input, "password").map(Some);
    }
    Ok(env.filter(|password| !password.is_empty()))
}

/// [`given`] with the real standard input and environment.
pub(crate) fn from_stdin_or_env(from_stdin: bool) -> anyhow::Result<Option<String>> {
    // `std::io::stdin` buffers for the whole process, and Tokio's stdin
    // reads through it: lines after the password are still there for
    // `chinwag chat`.
    given(from_stdin, std::env::var(ENV).ok(), &mut io::stdin().lock())
}

/// Whether a person can be asked: standard input is a terminal.
pub(crate) fn can_prompt() -> bool {
    io::stdin().is_terminal()
}

/// Asks at the terminal, without echo.
pub(crate) async fn prompt(prompt: String) -> anyhow::Result<String> {
    // Reading the terminal blocks; nothing else may wait on this thread.
    let answer = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
        .await
        .context("the password prompt failed")?
        .context("cannot read the password from the terminal")?;
    if answer.is_empty() {
        bail!("no password given");
    }
    Ok(answer)
}

/// Asks for a new password twice at the terminal; they must match.
pub(crate) async fn prompt_new(nick: &str, what: &str) -> anyhow::Result<String> {
    let first = prompt(format!("{what} for {nick}: ")).await?;
    let again = prompt(format!("{what} for {nick}, again: ")).await?;
    if first != again {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// Checks a new password's length as the hub will, to say so before
/// connecting.
pub(crate) fn check_new(password: &str) -> anyhow::Result<()> {
    if !LENGTHS.contains(&password.len()) {
        bail!(
            "a password must be {} to {} bytes long",
            LENGTHS.start(),
            LENGTHS.end()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_comes_first_then_the_environment() {
        let mut input = "from stdin\nchat line\n".as_bytes();
        let password = given(true, Some("from env".into()), &mut input).unwrap();
        assert_eq!(password.as_deref(), Some("from stdin"));
        // Only the first line is taken: the rest is left to read.
        assert_eq!(input, b"chat line\n");

        let mut nothing = "".as_bytes();
        let password = given(false, Some("from env".into()), &mut nothing).unwrap();
        assert_eq!(password.as_deref(), Some("from env"));
        assert_eq!(given(false, None, &mut nothing).unwrap(), None);
        // An empty variable is no password.
        assert_eq!(
            given(false, Some(String::new()), &mut nothing).unwrap(),
            None
        );
    }

    #[test]
    fn a_line_loses_its_ending_and_keeps_its_spaces() {
        let mut input = " two words \r\nnext".as_bytes();
        assert_eq!(read_line(&mut input, "password").unwrap(), " two words ");
        let mut input = "no newline".as_bytes();
        assert_eq!(read_line(&mut input, "password").unwrap(), "no newline");
    }

    #[test]
    fn missing_or_empty_input_is_an_error_that_says_what_was_missing() {
        let error = given(true, None, &mut "".as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "standard input ended before the password"
        );
        let error = read_line(&mut "\n".as_bytes(), "new password").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the new password on standard input is empty"
        );
    }

    #[test]
    fn new_passwords_are_held_to_the_hubs_lengths() {
        assert!(check_new("12345678").is_ok());
        assert!(check_new("1234567").is_err());
        assert!(check_new(&"x".repeat(1024)).is_ok());
        assert!(check_new(&"x".repeat(1025)).is_err());
    }
}
