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

/// Every subcommand, as it would be run with `extra` listening endpoints
/// appended; `dir` is a directory `web` may serve.
fn every_subcommand(dir: &str) -> Vec<Vec<String>> {
    let own = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        own(&["web", "--path", dir]),
        own(&["echo"]),
        own(&["discard"]),
        own(&["chargen"]),
        own(&["daytime"]),
        own(&["time"]),
        own(&["qotd"]),
        own(&["portforward", "--connect", "tcp:host=127.0.0.1:port=9"]),
        own(&["chat"]),
    ]
}

#[test]
fn a_port_in_use_is_reported_and_nothing_claims_to_be_serving() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!(
        "tcp:{}:interface=127.0.0.1",
        taken.local_addr().unwrap().port()
    );
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    for workers in ["1", "2"] {
        for args in every_subcommand(dir) {
            if workers != "1" && args[0] == "chat" {
                continue; // refuses --workers for another reason
            }
            // A free endpoint first: it binds, then the taken one fails.
            let out = run_bounded(
                Command::new(BIN)
                    .args(["--workers", workers])
                    .args(&args)
                    .args(["--listen", "tcp:0:interface=127.0.0.1"])
                    .args(["--listen", &endpoint]),
            );
            let what = format!("--workers {workers} {}", args.join(" "));
            assert_eq!(out.status.code(), Some(1), "{what}: {}", out.stderr);
            assert!(out.stderr.contains("in use"), "{what}: {}", out.stderr);
            for claim in ["listening on", "serving", "forwarding"] {
                assert!(
                    !out.stderr.contains(claim),
                    "{what} said '{claim}' and did not listen:\n{}",
                    out.stderr
                );
            }
        }
    }
}

#[test]
fn a_second_process_with_workers_cannot_join_the_first_ones_port() {
    // `--workers` listens with SO_REUSEPORT, which lets any socket of the
    // same user join the port: the second command must refuse to, as it
    // does without `--workers`.
    let first = support::Server::start(
        Command::new(BIN).args(["--workers", "2", "echo", "--listen", support::LOOPBACK]),
        1,
    );
    let endpoint = format!("tcp:{}:interface=127.0.0.1", first.addr().port());
    for workers in ["2", "1"] {
        let out = run_bounded(Command::new(BIN).args([
            "--workers",
            workers,
            "echo",
            "--listen",
            &endpoint,
        ]));
        assert_eq!(
            out.status.code(),
            Some(1),
            "--workers {workers}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(&endpoint), "{}", out.stderr);
        assert!(out.stderr.contains("in use"), "{}", out.stderr);
        assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
    }
}
