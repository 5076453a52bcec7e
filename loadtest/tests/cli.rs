//! Bad arguments stop `loadtest` before it sends anything, with an error naming the flag.

use std::process::Command;

fn loadtest(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .output()
        .expect("run loadtest");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_arguments_get_clear_errors() {
    let url = "--url=http://127.0.0.1:9";
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--store", "s"], "--url is required"),
        (
            &["run", "--url", "not a url", "--store", "s"],
            "--url \"not a url\" is not a URL",
        ),
        (
            &["run", "--url", "https://127.0.0.1:9", "--store", "s"],
            "--url must be an http:// URL",
        ),
        (
            &["run", url, "--store", "s", "--rate", "0"],
            "--rate must be between",
        ),
        (&["bench", "--cpu", "--rate=-5"], "--rate must be between"),
        (
            &["bench", "--cpu", "--rate", "inf"],
            "--rate must be between",
        ),
        (&["bench", "--cpu", "--rate", "fast"], "is not a number"),
        (&["bench", "--watch-pid", "postgres"], "must be NAME=PID"),
        (
            &["run", url, "--store", "s", "--rate=-5"],
            "--rate must be between",
        ),
        (
            &["run", url, "--store", "s", "--connections", "0"],
            "--connections must be between",
        ),
        (
            &["run", url, "--store", "s", "--requests", "0"],
            "--requests must be between",
        ),
        (
            &["run", url, "--store", "s", "--duration", "5"],
            "time unit needed",
        ),
        (
            &["run", url, "--store", "s", "--duration", "5x"],
            "unknown time unit",
        ),
        (&["run", url], "needs --store"),
        (&["run", url, "--scenario", "api"], "needs --key"),
        (
            &["run", url, "--store", "s", "--verify"],
            "with --verify needs --key",
        ),
        (&["run", url, "--setup"], "--setup needs --admin-key"),
        (
            &["run", url, "--store", "s", "--max-unexpected", "101"],
            "--max-unexpected is a percent between 0 and 100",
        ),
        (
            &["run", url, "--store", "s", "--max-unexpected=-1"],
            "--max-unexpected is a percent between 0 and 100",
        ),
        (
            &["run", url, "--store", "s", "--max-unexpected", "NaN"],
            "--max-unexpected is a percent between 0 and 100",
        ),
        (
            &["run", url, "--store", "s", "--invalid-share", "1.5"],
            "--invalid-share must be between 0 and 1",
        ),
        (
            &[
                "run",
                url,
                "--store",
                "s",
                "--invalid-share",
                "0.6",
                "--oversize-share",
                "0.6",
            ],
            "add up to more than 1",
        ),
        (
            &["run", url, "--store", "s", "--batch-size", "1001"],
            "--batch-size must be between 1 and 1000",
        ),
        (
            &["run", url, "--store", "s", "--scenario", "flood"],
            "invalid value 'flood'",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = loadtest(args);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr:?}"
        );
    }
}

#[test]
fn an_unreachable_target_is_reported_not_hung_on_and_fails_the_run() {
    // Port 9 (discard) on loopback: nothing listens, so every connection is refused.
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--url",
            "http://127.0.0.1:9",
            "--store",
            "s",
            "--requests",
            "20",
            "--quiet",
        ])
        .output()
        .expect("run loadtest");
    // Not one request succeeded: exit code 3, whatever --max-unexpected says.
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no answer: Connect: 20"), "{stdout}");
    assert!(stdout.contains("FAILED: 100.00% of requests"), "{stdout}");
}

#[test]
fn help_documents_the_exit_codes_and_the_source_addresses() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--help"])
        .output()
        .expect("run loadtest");
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--max-unexpected",
        "Exit codes: 0 success",
        "3 this threshold passed",
        "--single-source",
        "all connections share this machine's one address",
        "--state",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}
