//! The command line itself: help, and failing clearly at startup.

mod support;

use std::net::TcpListener;
use std::process::Command;
use support::{run_bounded, BIN};

#[test]
fn help_lists_echo_with_an_example() {
    let out = run_bounded(Command::new(BIN).arg("--help"));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("echo"), "{}", out.stdout);
    assert!(
        out.stdout.contains("torsion echo"),
        "no example: {}",
        out.stdout
    );

    let out = run_bounded(Command::new(BIN).args(["echo", "--help"]));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("--listen"), "{}", out.stdout);
    assert!(out.stdout.contains("Examples:"), "{}", out.stdout);
}

#[test]
fn bad_endpoint_strings_exit_non_zero_naming_them() {
    for bad in [
        "tcp:notaport",
        "bogus:1",
        "tcp:0:interface=127.0.0.1:frobnicate=1",
    ] {
        let out = run_bounded(Command::new(BIN).args(["echo", "--listen", bad]));
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains(bad),
            "the message does not name {bad}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
    }
}

#[test]
fn a_bad_endpoint_among_good_ones_binds_nothing() {
    let out = run_bounded(Command::new(BIN).args([
        "echo",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--listen",
        "tcp:nope",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
}

#[test]
fn port_in_use_exits_non_zero_naming_the_endpoint() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!(
        "tcp:{}:interface=127.0.0.1",
        taken.local_addr().unwrap().port()
    );
    let out = run_bounded(Command::new(BIN).args(["echo", "--listen", &endpoint]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&endpoint), "{}", out.stderr);
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
}

#[test]
fn bad_log_filter_is_a_usage_error() {
    let out = run_bounded(Command::new(BIN).args(["--log-level", "info,=[", "echo"]));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--log-level"), "{}", out.stderr);
}
