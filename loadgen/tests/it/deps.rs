//! Dependency hygiene, checked on the lock file with `cargo tree` (offline): no unmaintained
//! `rustls-pemfile` (RUSTSEC-2025-0134), no direct dependency the code does not use, and a
//! loadgen that builds without the server crate when the embedded server is not wanted.

use std::process::Command;

/// `cargo tree` of `package` with `args`, one crate name per line.
fn tree(package: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "-e",
            "normal",
            "-p",
            package,
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect()
}

#[test]
fn no_unmaintained_or_unused_direct_dependencies() {
    for (package, unwanted) in [
        ("server", &["rustls-pemfile", "sha1", "base64", "libc"][..]),
        (
            "loadgen",
            &["rustls-pemfile", "thiserror", "tracing-subscriber"][..],
        ),
    ] {
        let direct = tree(package, &["--depth", "1"]);
        for name in unwanted {
            assert!(
                !direct.iter().any(|d| d == name),
                "{package} depends on {name}: {direct:?}"
            );
        }
    }
    let everything = tree("loadgen", &[]);
    assert!(!everything.iter().any(|d| d == "rustls-pemfile"));
}

#[test]
fn loadgen_without_the_embedded_server_links_no_server_framework() {
    let all = tree("loadgen", &["--no-default-features"]);
    assert!(all.iter().any(|d| d == "feedlab-wire"), "{all:?}");
    for heavy in ["server", "actix-web", "redb", "redis", "rcgen"] {
        assert!(
            !all.iter().any(|d| d == heavy),
            "{heavy} is linked: {all:?}"
        );
    }
}
