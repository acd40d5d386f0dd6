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
    // The daemon under test is the debug build cargo made for these tests.
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
}
