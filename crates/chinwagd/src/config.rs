//! The settings: flags, the environment, a TOML file, defaults.
//!
//! Every flag of `chinwagd --help` (but `--config`, `--check-config` and
//! `--print-config`) is also a key of the file, spelled as the flag without
//! its dashes (`max-connections = 10000`), and an environment variable,
//! `CHINWAGD_` and the flag in capitals (`CHINWAGD_MAX_CONNECTIONS=10000`).
//! The first of these that sets a value wins: the flag, then the
//! environment, then the file, then the default. (`CHINWAG_LISTEN` and
//! `CHINWAG_DATA_DIR`, the older names, still work.)
//!
//! The file is `--config PATH` (or `$CHINWAGD_CONFIG`), else
//! `/etc/chinwag/chinwagd.toml` when it exists. A key the daemon does not
//! know, a value of the wrong kind, or one its flag would refuse, is an
//! error naming the file, the line and the key. Values are checked exactly
//! as flags are: each setting from the file or the environment is handed to
//! the flag parser as if typed, in the place its precedence gives it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory as _, FromArgMatches as _};

use crate::Args;

/// The file read when `--config` is not given, if it exists.
pub(crate) const DEFAULT_PATH: &str = "/etc/chinwag/chinwagd.toml";

/// Flags that are about the configuration itself, not settings.
const NOT_SETTINGS: [&str; 5] = ["config", "check-config", "print-config", "help", "version"];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Flag,
    Env(String),
    File { path: PathBuf, line: usize },
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(name) => write!(f, "environment ({name})"),
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// The settings, and where each came from (by flag name).
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) args: Args,
    pub(crate) sources: BTreeMap<String, Source>,
    pub(crate) file: Option<PathBuf>,
    effective: BTreeMap<String, Vec<String>>,
}

/// A setting's flag: its name and whether it takes no value.
struct Setting {
    long: String,
    switch: bool,
    env: Vec<String>,
}

fn settings() -> Vec<Setting> {
    let command = Args::command();
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .filter_map(|arg| {
            let long = arg.get_long()?.to_owned();
            if NOT_SETTINGS.contains(&long.as_str()) {
                return None;
            }
            let switch = matches!(arg.get_action(), ArgAction::SetTrue);
            let mut env = vec![format!(
                "CHINWAGD_{}",
                long.to_uppercase().replace('-', "_")
            )];
            // The older names, still read (the flag parser reads them too).
            if let Some(old) = arg.get_env() {
                env.push(old.to_string_lossy().into_owned());
            }
            Some(Setting { long, switch, env })
        })
        .collect()
}

/// Parses the command line, the environment and the file into the
/// settings.
pub(crate) fn load() -> anyhow::Result<Loaded> {
    load_from(&std::env::args_os().collect::<Vec<_>>(), |name| {
        std::env::var_os(name)
    })
}

fn load_from(cli: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<Loaded> {
    // The command line alone first: for --help, --version, a bad flag (clap
    // prints and exits as ever), `--config`, and which settings it sets.
    let from_cli = Args::command().get_matches_from(cli);
    let file = match from_cli.get_one::<PathBuf>("config") {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|path| path.exists()),
    };
    let on_cli = |long: &str| {
        let id = long.replace('-', "_");
        from_cli.value_source(&id) == Some(ValueSource::CommandLine)
    };

    let settings = settings();
    let mut sources = BTreeMap::new();
    let mut command_line: Vec<OsString> = cli.first().cloned().into_iter().collect();
    let mut env_taken = BTreeMap::new();
    for setting in &settings {
        if on_cli(&setting.long) {
            sources.insert(setting.long.clone(), Source::Flag);
            continue;
        }
        let found = setting
            .env
            .iter()
            .find_map(|name| env(name).map(|value| (name.clone(), value)));
        if let Some((name, value)) = found {
            push(&mut command_line, setting, value);
            sources.insert(setting.long.clone(), Source::Env(name.clone()));
            env_taken.insert(setting.long.clone(), name);
        }
    }
    if let Some(path) = &file {
        for (key, value, line) in read_file(path)? {
            let Some(setting) = settings.iter().find(|s| s.long == key) else {
                bail!("{}:{line}: unknown key `{key}`", path.display());
            };
            let value = as_argument(&value, setting.switch)
                .with_context(|| format!("{}:{line}: `{key}`", path.display()))?;
            check(setting, value.as_ref())
                .with_context(|| format!("{}:{line}: `{key}`", path.display()))?;
            if sources.contains_key(&key) {
                continue;
            }
            if let Some(value) = value {
                push(&mut command_line, setting, value);
            }
            sources.insert(
                key,
                Source::File {
                    path: path.clone(),
                    line,
                },
            );
        }
    }
    // Then the command line itself, after what the others set.
    command_line.extend(cli.iter().skip(1).cloned());
    let matches = Args::command()
        .try_get_matches_from(&command_line)
        .map_err(|error| {
            // Only a value from the environment can fail here: the file's
            // were checked one by one, and the command line's already.
            anyhow::anyhow!(
                "{}{}",
                error.kind(),
                describe_env(&env_taken).unwrap_or_default()
            )
        })?;
    let args = Args::from_arg_matches(&matches).map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut effective = BTreeMap::new();
    for setting in &settings {
        let id = setting.long.replace('-', "_");
        sources
            .entry(setting.long.clone())
            .or_insert(Source::Default);
        let values: Vec<String> = matches
            .get_raw(&id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let values = if setting.switch {
            vec![matches.get_flag(&id).to_string()]
        } else {
            values
        };
        effective.insert(setting.long.clone(), values);
    }
    Ok(Loaded {
        args,
        sources,
        file,
        effective,
    })
}

fn describe_env(taken: &BTreeMap<String, String>) -> Option<String> {
    (!taken.is_empty()).then(|| {
        let names: Vec<&str> = taken.values().map(String::as_str).collect();
        format!(" (from the environment: {})", names.join(", "))
    })
}

/// Appends `--flag value` (or `--flag` for a switch whose value is true).
fn push(argv: &mut Vec<OsString>, setting: &Setting, value: OsString) {
    if setting.switch {
        let on = value.to_string_lossy();
        if matches!(on.as_ref(), "1" | "true" | "yes" | "on") {
            argv.push(format!("--{}", setting.long).into());
        }
        return;
    }
    argv.push(format!("--{}", setting.long).into());
    argv.push(value);
}

/// Checks one value as its flag would, alone.
fn check(setting: &Setting, value: Option<&OsString>) -> anyhow::Result<()> {
    let mut argv: Vec<OsString> = vec!["chinwagd".into()];
    if let Some(value) = value {
        push(&mut argv, setting, value.clone());
    }
    Args::command()
        .try_get_matches_from(argv)
        .map(drop)
        .map_err(|error| {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or("invalid value");
            anyhow::anyhow!("{}", first.trim_start_matches("error: "))
        })
}

/// A TOML value as the flag's argument: `None` for a switch set to false.
fn as_argument(value: &toml::Value, switch: bool) -> anyhow::Result<Option<OsString>> {
    Ok(Some(match (value, switch) {
        (toml::Value::Boolean(true), true) => "true".into(),
        (toml::Value::Boolean(false), true) => return Ok(None),
        (_, true) => bail!("takes true or false"),
        (toml::Value::String(text), false) => text.into(),
        (toml::Value::Integer(n), false) => n.to_string().into(),
        (toml::Value::Float(x), false) => x.to_string().into(),
        (toml::Value::Boolean(b), false) => b.to_string().into(),
        (toml::Value::Array(items), false) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::String(text) => parts.push(text.clone()),
                    _ => bail!("takes a list of strings"),
                }
            }
            parts.join(",").into()
        }
        (toml::Value::Table(_) | toml::Value::Datetime(_), false) => {
            bail!("takes a string or a number, not a table or a date")
        }
    }))
}

/// The file's settings, each with its line.
fn read_file(path: &Path) -> anyhow::Result<Vec<(String, toml::Value, usize)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let table: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> = toml::from_str(&text)
        .map_err(|error| {
            let line = error.span().map_or(0, |span| line_of(&text, span.start));
            anyhow::anyhow!("{}:{line}: {}", path.display(), error.message())
        })?;
    let mut settings: Vec<_> = table
        .into_iter()
        .map(|(key, value)| {
            let line = line_of(&text, key.span().start);
            (key.into_inner(), value.into_inner(), line)
        })
        .collect();
    settings.sort_by_key(|(_, _, line)| *line);
    Ok(settings)
}

/// The line (from 1) of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

impl Loaded {
    /// Each setting's values as in force (by flag name).
    pub(crate) fn effective(&self) -> &BTreeMap<String, Vec<String>> {
        &self.effective
    }

    /// The effective settings as a TOML file, each with where it came from.
    pub(crate) fn to_toml(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("# chinwagd's effective configuration\n");
        if let Some(file) = &self.file {
            let _ = writeln!(out, "# file: {}", file.display());
        }
        for (key, values) in &self.effective {
            let source = self.sources.get(key).unwrap_or(&Source::Default);
            let value = match values.as_slice() {
                [] => {
                    let _ = writeln!(out, "# {key} is unset  # {source}");
                    continue;
                }
                [one] if one == "true" || one == "false" => one.clone(),
                [one] => toml::Value::String(one.clone()).to_string(),
                many => toml::Value::Array(many.iter().cloned().map(toml::Value::String).collect())
                    .to_string(),
            };
            let _ = writeln!(out, "{key} = {value}  # {source}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Loaded> {
        let env: BTreeMap<String, OsString> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        load_from(
            &std::iter::once("chinwagd")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect::<Vec<_>>(),
            move |name| env.get(name).cloned(),
        )
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() {
        let conf = file(
            "max-connections = 50\nlisten = \"127.0.0.1:3000\"\nrequire-accounts = true\nmax-unregistered = 7\n",
        );
        let path = conf.path().to_str().unwrap();
        let loaded = load_with(
            &["--config", path, "--max-connections", "60"],
            &[("CHINWAGD_LISTEN", "127.0.0.1:4000")],
        )
        .unwrap();
        assert_eq!(loaded.args.max_connections, 60);
        assert_eq!(loaded.args.listen, "127.0.0.1:4000");
        assert!(loaded.args.require_accounts);
        assert_eq!(loaded.args.max_unregistered, 7);
        assert_eq!(loaded.sources["max-connections"], Source::Flag);
        assert_eq!(
            loaded.sources["listen"],
            Source::Env("CHINWAGD_LISTEN".into())
        );
        assert_eq!(
            loaded.sources["max-unregistered"],
            Source::File {
                path: conf.path().to_path_buf(),
                line: 4
            }
        );
        assert_eq!(loaded.sources["frame-timeout"], Source::Default);
        let printed = loaded.to_toml();
        assert!(
            printed.contains("max-connections = \"60\"  # flag"),
            "{printed}"
        );
        assert!(printed.contains("require-accounts = true  # "), "{printed}");
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_names_the_file_line_and_key() {
        let conf = file("max-connections = 10\n\nmax-conections = 5\n");
        let path = conf.path().to_str().unwrap();
        let error = load_with(&["--config", path], &[]).unwrap_err().to_string();
        assert_eq!(error, format!("{path}:3: unknown key `max-conections`"));

        let conf = file("frame-timeout = \"soon\"\n");
        let path = conf.path().to_str().unwrap();
        let error = format!("{:#}", load_with(&["--config", path], &[]).unwrap_err());
        assert!(
            error.starts_with(&format!("{path}:1: `frame-timeout`: ")),
            "{error}"
        );

        let conf = file("require-accounts = \"yes\"\n");
        let path = conf.path().to_str().unwrap();
        let error = format!("{:#}", load_with(&["--config", path], &[]).unwrap_err());
        assert_eq!(
            error,
            format!("{path}:1: `require-accounts`: takes true or false")
        );

        let conf = file("listen = \n");
        let path = conf.path().to_str().unwrap();
        let error = load_with(&["--config", path], &[]).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{path}:1: ")), "{error}");
    }

    #[test]
    fn what_is_printed_reads_back_as_the_same_settings() {
        let conf = file("exempt = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\nmailbox-max-age = \"7d\"\n");
        let first = load_with(&["--config", conf.path().to_str().unwrap()], &[]).unwrap();
        let printed = file(&first.to_toml());
        let again = load_with(&["--config", printed.path().to_str().unwrap()], &[]).unwrap();
        assert_eq!(first.effective, again.effective);
        assert_eq!(again.args.exempt.len(), 2);
    }
}
