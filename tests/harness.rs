//! The harness cleans up after itself even when a test panics without dropping it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "BATON_HARNESS_PANIC_HELPER";

/// Run only as a child of the test below: starts the shared control plane, records
/// its process ids and folder, then panics.
#[tokio::test]
#[ignore = "helper process for processes_stop_when_a_test_panics"]
async fn helper_starts_a_shared_control_plane_and_panics() {
    let Some(out) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let cp = baton_testkit::shared().await.expect("control plane starts");
    let (etcd, api) = cp.pids();
    std::fs::write(&out, format!("{etcd} {api} {}", cp.dir().display())).expect("write pids");
    panic!("deliberate panic with the control plane running");
}

#[test]
fn processes_stop_and_files_go_when_a_test_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("pids");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "helper_starts_a_shared_control_plane_and_panics",
        ])
        .env(HELPER_ENV, &record)
        .output()
        .expect("helper runs");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the helper must fail by panicking: {log}"
    );
    let text = std::fs::read_to_string(&record)
        .unwrap_or_else(|e| panic!("helper recorded nothing ({e}): {log}"));
    let mut parts = text.splitn(3, ' ');
    let etcd = parts.next().expect("etcd pid");
    let api = parts.next().expect("apiserver pid");
    let folder = parts.next().expect("folder").to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alive: Vec<&str> = [etcd, api]
            .into_iter()
            .filter(|pid| is_running(pid))
            .collect();
        if alive.is_empty() && !Path::new(&folder).exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running {alive:?} or folder {folder} left behind"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A pid that exited but was not reaped is a zombie, not running.
fn is_running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
