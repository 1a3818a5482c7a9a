//! `tracenet-node demo` as a new user starts it on a busy two-core machine: it founds its
//! federation and prints the consoles every time, and Ctrl-C (SIGINT) stops it, also while it
//! is still starting. Each wait is bounded so that a hang fails the test with what it waited
//! for instead of stalling the suite; the bounds are hang detectors, not speed assertions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{BIN, NodeProcess};

/// Starts of the demo under load (`TRACENET_DEMO_STARTS` for a longer run).
fn starts() -> usize {
    std::env::var("TRACENET_DEMO_STARTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// Busy threads that keep every core loaded until dropped.
struct Load(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Load {
    fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Load(stop, handles)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for h in self.1.drain(..) {
            let _ = h.join();
        }
    }
}

/// Starts the demo and returns it with a channel of its output lines (stdout and stderr).
fn demo() -> (NodeProcess, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["demo", "--records", "20", "--gateway-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let forward = |out: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>| {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    };
    forward(Box::new(child.stdout.take().unwrap()), tx.clone());
    forward(Box::new(child.stderr.take().unwrap()), tx);
    (NodeProcess(child), rx)
}

/// Waits for a line containing `what`; the lines seen so far if it does not come.
fn wait_line(rx: &mpsc::Receiver<String>, what: &str, within: Duration) -> Result<(), Vec<String>> {
    let deadline = std::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(what) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => return Err(seen),
        }
    }
}

fn sigint(p: &NodeProcess) {
    let status = Command::new("kill")
        .args(["-INT", &p.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit after a signal; whether it did.
fn exits(p: &mut NodeProcess, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(s) = p.exited() {
            return Some(s);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_founds_its_federation_every_time_under_load_and_stops_on_ctrl_c() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let _load = Load::start(cores);
    for round in 1..=starts() {
        let (mut p, rx) = demo();
        if let Err(seen) = wait_line(&rx, "Press Ctrl-C", Duration::from_secs(240)) {
            panic!("start {round}: the demo did not print its consoles; its output: {seen:?}");
        }
        sigint(&p);
        let status = exits(&mut p, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("start {round}: the demo ignored SIGINT"));
        assert!(status.success(), "start {round}: exit {status:?}");
    }
}

#[test]
fn ctrl_c_during_start_up_stops_the_demo() {
    let (mut p, rx) = demo();
    // Printed once Ctrl-C is handled, before the nodes are up.
    if let Err(seen) = wait_line(&rx, "starting", Duration::from_secs(60)) {
        panic!("the demo did not say it was starting: {seen:?}");
    }
    sigint(&p);
    let status = exits(&mut p, Duration::from_secs(60)).expect("the demo ignored SIGINT");
    // Interrupted start-up is an error exit with a message, not a hang or a crash by signal.
    assert!(status.code().is_some(), "killed by a signal: {status:?}");
    drop(rx);
}
