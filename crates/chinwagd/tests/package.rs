//! The Debian package, built by `cargo deb` from this build's daemon (the
//! debug build the tests already have: `--no-build`) and taken apart with
//! `dpkg-deb`: the binary, the systemd units, the configuration as a
//! conffile, the scripts that enable the units, the manual pages and shell
//! completions, and a daemon that runs from the unpacked files. A machine
//! without `cargo deb` or `dpkg-deb` skips, saying so (`.ci/run` installs
//! them).

use std::path::Path;
use std::process::Command;

/// The manual pages, gzipped (by cargo-deb, per Debian policy), each with
/// the title line that names its program and section.
const MAN_PAGES: [(&str, &str); 2] = [
    ("/usr/share/man/man8/chinwagd.8.gz", ".TH chinwagd 8 "),
    ("/usr/share/man/man1/chinwag.1.gz", ".TH chinwag 1 "),
];

/// The shell completions, where bash-completion, zsh and fish look for
/// those of packages.
const COMPLETIONS: [&str; 6] = [
    "/usr/share/bash-completion/completions/chinwagd",
    "/usr/share/bash-completion/completions/chinwag",
    "/usr/share/zsh/vendor-completions/_chinwagd",
    "/usr/share/zsh/vendor-completions/_chinwag",
    "/usr/share/fish/vendor_completions.d/chinwagd.fish",
    "/usr/share/fish/vendor_completions.d/chinwag.fish",
];

fn have(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

fn run(program: &str, args: &[&str], cwd: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_deb_holds_the_daemon_its_units_and_its_configuration() {
    if !have("cargo", &["deb", "--version"]) || !have("dpkg-deb", &["--version"]) {
        eprintln!(
            "SKIPPED the .deb test: `cargo deb` (cargo install cargo-deb) or `dpkg-deb` is not installed"
        );
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    // The programs under test are the debug builds cargo made for these
    // tests; the client's is built here if the run did not need it.
    run(
        "cargo",
        &["build", "-p", "chinwag-client", "--bin", "chinwag"],
        &workspace,
    );
    run(
        "cargo",
        &[
            "deb",
            "-p",
            "chinwagd",
            "--profile",
            "dev",
            "--no-build",
            "--no-strip",
            "--output",
            output,
        ],
        &workspace,
    );
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .expect("a .deb");
    let deb = deb.to_str().unwrap();

    // `dpkg-deb -c` lists like `tar tv`: the path is the sixth field. Whole
    // paths are compared (`chinwag` is a prefix of `chinwagd`).
    let contents = run("dpkg-deb", &["-c", deb], out.path());
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .collect();
    let man_pages = MAN_PAGES.iter().map(|&(page, _)| page);
    for file in [
        "/usr/bin/chinwagd",
        "/usr/bin/chinwag",
        "/usr/lib/systemd/system/chinwagd.service",
        "/usr/lib/systemd/system/chinwagd.socket",
        "/etc/chinwag/chinwagd.toml",
    ]
    .into_iter()
    .chain(man_pages)
    .chain(COMPLETIONS)
    {
        assert!(
            paths.contains(&format!(".{file}").as_str()),
            "{file} not in:\n{contents}"
        );
    }

    let control = out.path().join("control");
    run(
        "dpkg-deb",
        &["-e", deb, control.to_str().unwrap()],
        out.path(),
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/chinwag/chinwagd.toml");
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    for unit in ["chinwagd.service", "chinwagd.socket"] {
        assert!(
            postinst.contains(unit),
            "postinst does not enable {unit}:\n{postinst}"
        );
    }

    // The unpacked daemon checks the unpacked configuration.
    let root = out.path().join("root");
    run("dpkg-deb", &["-x", deb, root.to_str().unwrap()], out.path());
    let daemon = root.join("usr/bin/chinwagd");
    let config = root.join("etc/chinwag/chinwagd.toml");
    let checked = run(
        daemon.to_str().unwrap(),
        &["--config", config.to_str().unwrap(), "--check-config"],
        out.path(),
    );
    assert!(
        checked.starts_with("chinwagd: configuration OK"),
        "{checked}"
    );
    for (page, title) in MAN_PAGES {
        let text = gunzip(&root.join(&page[1..]));
        assert!(text.contains(title), "{page} lacks {title:?}:\n{text}");
    }

    install_check_and_purge(deb);
}

/// The text of a gzipped file, by `gzip` (essential on Debian); fails the
/// test if it is not valid gzip.
fn gunzip(file: &Path) -> String {
    run("gzip", &["-dc", file.to_str().unwrap()], Path::new("/"))
}

/// As root with `dpkg` (CI): installs the package into this machine, checks
/// the installed configuration with the installed daemon (its default
/// path), and purges it, leaving nothing of it behind.
fn install_check_and_purge(deb: &str) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !root || !have("dpkg", &["--version"]) {
        eprintln!("SKIPPED installing the .deb: needs root and dpkg");
        return;
    }
    let here = Path::new("/");
    run("dpkg", &["-i", deb], here);
    let checked = run("/usr/bin/chinwagd", &["--check-config"], here);
    assert_eq!(
        checked.trim(),
        "chinwagd: configuration OK (/etc/chinwag/chinwagd.toml)"
    );
    assert!(run("/usr/bin/chinwag", &["--version"], here).starts_with("chinwag "));
    check_installed_docs(here);
    run("dpkg", &["--purge", "chinwagd"], here);
    let man_pages = MAN_PAGES.iter().map(|&(page, _)| page);
    for gone in [
        "/usr/bin/chinwagd",
        "/usr/bin/chinwag",
        "/etc/chinwag/chinwagd.toml",
        "/usr/lib/systemd/system/chinwagd.service",
    ]
    .into_iter()
    .chain(man_pages)
    .chain(COMPLETIONS)
    {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}

/// The installed manual pages read as gzipped roff that names its
/// program, `man` finds the daemon's (with man-db), and the completions
/// are in place. A dpkg told to leave out documentation (`path-exclude`,
/// as minimised container images are) installs none of it: that skips,
/// saying so.
fn check_installed_docs(here: &Path) {
    if let Some(excluded) = dpkg_excludes("/usr/share/man/man8/chinwagd.8.gz") {
        eprintln!("SKIPPED the installed manual pages and completions: dpkg is told {excluded}");
        return;
    }
    for (page, title) in MAN_PAGES {
        let text = gunzip(Path::new(page));
        assert!(text.contains(title), "{page} lacks {title:?}:\n{text}");
    }
    if have("man", &["--version"]) {
        let found = run("man", &["-w", "chinwagd"], here);
        assert_eq!(found.trim(), MAN_PAGES[0].0);
    } else {
        eprintln!("SKIPPED `man -w chinwagd`: man-db is not installed");
    }
    for completion in COMPLETIONS {
        let name = completion.rsplit('/').next().unwrap_or_default();
        let name = name.trim_start_matches('_').trim_end_matches(".fish");
        let text = std::fs::read_to_string(completion)
            .unwrap_or_else(|error| panic!("{completion} not installed: {error}"));
        assert!(text.contains(name), "{completion} does not name {name}");
    }
}

/// The `path-exclude=` line of dpkg's configuration that leaves `file`
/// out, if one does (a glob's literal part before its first `*` taken as
/// a prefix: enough for the `/usr/share/man/*` of minimised images).
fn dpkg_excludes(file: &str) -> Option<String> {
    let mut configs = vec![Path::new("/etc/dpkg/dpkg.cfg").to_owned()];
    if let Ok(dir) = std::fs::read_dir("/etc/dpkg/dpkg.cfg.d") {
        configs.extend(dir.flatten().map(|entry| entry.path()));
    }
    for config in configs {
        let Ok(text) = std::fs::read_to_string(config) else {
            continue;
        };
        for line in text.lines() {
            let Some(glob) = line.strip_prefix("path-exclude") else {
                continue;
            };
            let glob = glob.trim_start_matches(['=', ' ']);
            if file.starts_with(glob.split('*').next().unwrap_or(glob)) {
                return Some(line.to_owned());
            }
        }
    }
    None
}
