//! Files that a program generates and the repository commits: the manual
//! pages and shell completions under `dist/`, which the .deb carries
//! (`cargo deb` takes files, it runs no program). A test compares each file
//! with what the program prints now, so that neither can drift from the
//! other; [`REGENERATE`] set makes the same test rewrite them instead.

use std::path::Path;
use std::process::Command;

/// Set (to anything) to make [`assert_generated`] rewrite the committed
/// files instead of failing.
pub const REGENERATE: &str = "CHINWAG_REGENERATE";

/// The command that rewrites every generated file under `dist/`: the
/// `dist` tests of both programs, with [`REGENERATE`] set.
pub const REGENERATE_COMMAND: &str =
    "CHINWAG_REGENERATE=1 cargo test -p chinwagd -p chinwag-client --test dist";

/// Asserts that each file, a path relative to the workspace's root, holds
/// exactly what `program` prints on stdout when run with its arguments; a
/// failure names every stale file, where each first differs, and
/// [`REGENERATE_COMMAND`]. With [`REGENERATE`] set, writes the files
/// instead (creating their directories). `program` is the path of the
/// program under test (`env!("CARGO_BIN_EXE_chinwagd")`); each file is
/// given with the arguments that print it (`(&["man"],
/// "dist/man/chinwagd.8")`).
pub fn assert_generated(program: &str, files: &[(&[&str], &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let regenerate = std::env::var_os(REGENERATE).is_some();
    let mut stale = Vec::new();
    for &(args, file) in files {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{program} {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let path = root.join(file);
        if regenerate {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
            }
            std::fs::write(&path, &output.stdout)
                .unwrap_or_else(|error| panic!("cannot write {file}: {error}"));
            eprintln!("regenerated {file}");
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != output.stdout {
            let name = Path::new(program)
                .file_name()
                .map_or(program.into(), |name| name.to_string_lossy());
            stale.push(format!(
                "{file} is not what `{name} {}` prints: {}",
                args.join(" "),
                first_difference(&committed, &output.stdout)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nThese files are generated from the program's flags, help and version (never edited \
         by hand): regenerate them and commit them:\n    {REGENERATE_COMMAND}",
        stale.join("\n")
    );
}

/// Where `committed` and `generated` part: the first line that differs,
/// as each has it.
fn first_difference(committed: &[u8], generated: &[u8]) -> String {
    if committed.is_empty() {
        return "the file is missing or empty".to_owned();
    }
    let committed = String::from_utf8_lossy(committed);
    let generated = String::from_utf8_lossy(generated);
    let (mut committed, mut generated) = (committed.lines(), generated.lines());
    let mut number = 1;
    loop {
        match (committed.next(), generated.next()) {
            (Some(old), Some(new)) if old == new => number += 1,
            (old, new) => {
                return format!(
                    "line {number} is {:?} in the file, {:?} from the program",
                    old.unwrap_or("(the end)"),
                    new.unwrap_or("(the end)")
                );
            }
        }
    }
}
