//! sluice-gen, the benchmark generator and sink (issue #7), against the
//! reference forwarder: dpdk-testpmd in io-forward mode between two
//! net_memif ports. What it sends at a paced rate comes back, counted, with
//! its payload intact.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// testpmd, killed (and its runtime directory removed) however the test ends.
struct Forwarder(Child, String);

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(std::path::Path::new("/var/run/dpdk").join(&self.1));
    }
}

#[test]
fn sluice_gen_paces_sends_and_counts_through_testpmd_io_forward() {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("sluice-gen-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    // testpmd exits when its stdin closes: hold it open until we are done.
    let fwd = Command::new("dpdk-testpmd")
        .args(["--lcores=0@1,1@1", "--no-huge", "-m", "512", "--no-pci"])
        .arg(format!("--file-prefix=sgfwd{id}"))
        .arg(format!(
            "--vdev=net_memif0,role=server,socket={}",
            a.display()
        ))
        .arg(format!(
            "--vdev=net_memif1,role=server,socket={}",
            b.display()
        ))
        .args(["--", "--forward-mode=io", "--auto-start", "--nb-cores=1"])
        .arg("--total-num-mbufs=16384")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dpdk-testpmd (Debian package dpdk)");
    let fwd = Forwarder(fwd, format!("sgfwd{id}"));
    std::thread::sleep(Duration::from_secs(1));
    let r = sluice_tests::gen::run(
        &format!("sggen{id}"),
        &a,
        &b,
        &["--rate", "200000", "--seconds", "2", "--flows", "4096"],
        10,
    );
    drop(fwd);
    let _ = std::fs::remove_dir_all(&dir);
    let offered = r.get("offered");
    // Paced: 2 s at 200 kpps is 400,000 frames, give or take a burst.
    assert!((399_000.0..=401_000.0).contains(&offered), "{}", r.json);
    assert!(r.get("received") >= 0.95 * offered, "{}", r.json);
    assert!(r.get("received") <= r.get("sent"), "{}", r.json);
    assert_eq!(r.get("bad_sampled"), 0.0, "{}", r.json);
}
