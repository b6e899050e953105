//! Dependency hygiene, checked on the lock file with `cargo tree` (offline): no unmaintained
//! `rustls-pemfile` (RUSTSEC-2025-0134), no direct dependency the code does not use, a loadgen
//! that links no server framework when the embedded server is not wanted (that it then builds
//! is `cargo check -p loadgen --no-default-features` in test.sh), and a report crate without
//! tokio, hyper or rustls.

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
        // base64 is the server's own since binary WebSocket messages: a publish carries raw
        // bytes as `{"bin":"<base64>"}` (server/src/transport/ws/binary.rs).
        ("server", &["rustls-pemfile", "sha1", "libc"][..]),
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

#[test]
fn the_report_and_the_link_data_need_no_runtime_and_no_http() {
    for (package, args) in [
        ("feedlab-report", &[][..]),
        ("feedlab-link", &["--no-default-features"][..]),
    ] {
        let all = tree(package, args);
        for heavy in ["tokio", "hyper", "rustls", "tun"] {
            assert!(
                !all.iter().any(|d| d == heavy),
                "{package} links {heavy}: {all:?}"
            );
        }
    }
}
