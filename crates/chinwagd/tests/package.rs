//! The Debian package, built by `cargo deb` from this build's daemon (the
//! debug build the tests already have: `--no-build`) and taken apart with
//! `dpkg-deb`: the binary, the systemd units, the configuration as a
//! conffile, the scripts that enable the units, and a daemon that runs from
//! the unpacked files. A machine without `cargo deb` or `dpkg-deb` skips,
//! saying so (`.ci/run` installs them).

use std::path::Path;
use std::process::Command;

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

    let contents = run("dpkg-deb", &["-c", deb], out.path());
    for file in [
        "./usr/bin/chinwagd",
        "./usr/bin/chinwag",
        "./usr/lib/systemd/system/chinwagd.service",
        "./usr/lib/systemd/system/chinwagd.socket",
        "./etc/chinwag/chinwagd.toml",
    ] {
        assert!(contents.contains(file), "{file} not in:\n{contents}");
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

    install_check_and_purge(deb);
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
    run("dpkg", &["--purge", "chinwagd"], here);
    for gone in [
        "/usr/bin/chinwagd",
        "/usr/bin/chinwag",
        "/etc/chinwag/chinwagd.toml",
        "/usr/lib/systemd/system/chinwagd.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}
