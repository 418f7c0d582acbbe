//! Out of file descriptors, the accept loop backs off instead of spinning,
//! health keeps answering on an open connection, and new connections are
//! served again once descriptors free up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use cx_testkit::process::{CxProcess, free_port};
use tokio::net::TcpStream;

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

/// User plus system CPU time of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which ends with ')': utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_backs_off_and_health_answers() {
    let cx = CxProcess::serve(env!("CARGO_BIN_EXE_cx"), "all", free_port(), &[("CX_HANDSHAKE_TIMEOUT", "3s")]);
    cx.wait_serving().await;
    let channel = tonic::transport::Endpoint::from_shared(cx.addr.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = || tonic_health::pb::HealthCheckRequest { service: String::new() };

    // A few descriptors to spare, then a flood of silent connections.
    let limit = open_fds(cx.pid()) + 8;
    let set = Command::new("prlimit")
        .args(["--pid", &cx.pid().to_string(), &format!("--nofile={limit}:{limit}")])
        .status()
        .unwrap();
    assert!(set.success(), "prlimit failed");
    let address = cx.addr.trim_start_matches("http://").to_owned();
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(TcpStream::connect(&address).await.unwrap());
    }
    let fds = || std::future::ready(open_fds(cx.pid()));
    cx_testkit::eventually("the flood exhausts the descriptors", fds, |open| *open >= limit - 1).await;

    // Two seconds out of descriptors: the process idles, and answers health.
    let before = cpu_ticks(cx.pid());
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer = tokio::time::timeout(Duration::from_secs(2), health.check(check())).await;
        assert_eq!(answer.expect("health timed out").unwrap().into_inner().status, SERVING);
    }
    let used = cpu_ticks(cx.pid()) - before;
    let share = used as f64 / (2 * clock_ticks_per_second()) as f64;
    assert!(share < 0.25, "accept loop used {:.0} % of a core while out of descriptors", share * 100.0);

    // The flood leaves: a new connection is served again.
    drop(flood);
    let probe = || {
        let probe = Command::new(env!("CARGO_BIN_EXE_cx")).args(["health", "--addr", &cx.addr]).output().unwrap();
        std::future::ready(probe.status)
    };
    cx_testkit::eventually("a new connection is served after descriptors freed", probe, |s| s.success()).await;
}
