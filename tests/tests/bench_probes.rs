//! What health probing costs the control core: sluiced probing 1,000
//! members every second (nginx answering `/health` on 1,000 addresses of
//! one backend), against the same daemon and members without a probe, in
//! the same run. CPU time of sluiced's main thread (the control loop) from
//! /proc over a 10 s window. A benchmark, not a test: `cargo test` skips it
//! (`test = false` in Cargo.toml); `bench/probes.sh` runs it on a release
//! build and BENCHMARKS.md quotes it. It fails when the measurement is not
//! valid (probes not at the rate asked, or failing).

use sluice_tests::lab::Lab;
use sluice_tests::nginx::Nginx;
use std::time::{Duration, Instant};

const MEMBERS: usize = 1000;
const WINDOW: Duration = Duration::from_secs(10);

fn member(i: usize) -> String {
    format!("10.0.{}.{}", 4 + i / 250, 1 + i % 250)
}

/// utime + stime of thread `tid` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Control-thread CPU share over [`WINDOW`] after a warm-up, and the report.
fn measure(lab: &Lab, probed: bool) -> (f64, sluice_tests::daemon::Report) {
    let (text, prefix) = lab.config("");
    let members: String = (0..MEMBERS)
        .map(|i| format!("  {{ address = \"{}\" }},\n", member(i)))
        .collect();
    let pool = format!(
        "[[pool]]\nname = \"big\"\nmembers = [\n{members}]\n\n[[lb_rule]]\nname = \"big\"\nfrontend = \"web\"\n\
         protocol = \"tcp\"\nfrontend_port = 8000\nbackend_port = 80\npool = \"big\"\n{}\n",
        if probed { "probe = \"http-health\"" } else { "" }
    );
    let text = text
        .replace(
            "addresses = [\"10.0.0.1/24\",",
            "addresses = [\"10.0.0.1/16\",",
        )
        // Only the big pool is probed.
        .replace("probe = \"http-health\"\n", "")
        + &pool;
    assert!(text.contains("10.0.0.1/16"), "conf/lab.toml changed shape");
    let d = lab.start_sluiced_with(&text, &prefix);
    // Warm-up: every member resolved and probed once.
    std::thread::sleep(Duration::from_secs(3));
    let t = ticks_per_second() as f64;
    let (c0, w0) = (cpu_ticks(d.pid()), Instant::now());
    std::thread::sleep(WINDOW);
    let (c1, w1) = (cpu_ticks(d.pid()), Instant::now());
    let share = (c1 - c0) as f64 / t / (w1 - w0).as_secs_f64();
    let r = d.stop();
    (share, r)
}

fn main() {
    let lab = Lab::new(1);
    let b = lab.backend(0);
    let batch: String = (0..MEMBERS)
        .map(|i| format!("addr add {}/16 dev eth0\n", member(i)))
        .collect();
    let file = lab.dir.join("addrs.batch");
    std::fs::write(&file, batch).unwrap();
    let out = lab.exec(&b, &["ip", "-batch", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    // One nginx answers /health on all 1,000 addresses.
    let nginx = Nginx::new(&lab, 0);
    nginx.configure(200, None, false);
    nginx.start(&lab);

    let (idle, _) = measure(&lab, false);
    let (busy, r) = measure(&lab, true);
    let secs = 3.0 + WINDOW.as_secs_f64();
    let started = r.get("probe.started") as f64;
    let ok = r.get("probe.succeeded") as f64;
    println!("probes: started {started}, succeeded {ok}, timeouts {}, refused {}, skipped {}, rx_dropped {}",
        r.get("probe.timeouts"), r.get("probe.refused"), r.get("probe.skipped"), r.get("probe.rx_dropped"));
    // A measurement is valid only if the probes ran at the rate asked and
    // succeeded (the members answered).
    assert!(
        started >= MEMBERS as f64 * (secs - 1.5),
        "fewer probes than 1,000 a second: {started} in {secs} s"
    );
    assert!(
        ok >= started * 0.99 - MEMBERS as f64,
        "probes failed: {ok} of {started}"
    );
    assert_eq!(r.get("rule.big.eligible_members"), MEMBERS as u64);
    println!(
        "control core: idle {:.1}%, probing {MEMBERS} members/s {:.1}%, probing costs {:.1}% (target < 20%)",
        idle * 100.0,
        busy * 100.0,
        (busy - idle) * 100.0
    );
}
