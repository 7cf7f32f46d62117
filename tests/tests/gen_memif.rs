//! sluice-gen, the benchmark generator and sink (issue #7), against the
//! reference forwarder: dpdk-testpmd in io-forward mode between two
//! net_memif ports. What it sends at a paced rate comes back, counted, with
//! its payload intact.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn field(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].parse().unwrap()
}

#[test]
fn sluice_gen_paces_sends_and_counts_through_testpmd_io_forward() {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("sluice-gen-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    // testpmd exits when its stdin closes: hold it open until we are done.
    let mut fwd = Command::new("dpdk-testpmd")
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
    // memif sockets are abstract (no file): retry until testpmd listens.
    let gen = sluice_tests::sluiced_path().with_file_name("sluice-gen");
    let mut tries = 0;
    let out = loop {
        std::thread::sleep(Duration::from_secs(1));
        let out = Command::new(&gen)
            .arg(format!(
                "--eal=--lcores=0@0 --no-huge -m 256 --no-pci --file-prefix=sggen{id} \
                 --vdev=net_memif0,role=client,socket={} --vdev=net_memif1,role=client,socket={}",
                a.display(),
                b.display()
            ))
            .args(["--tx", "net_memif0", "--rx", "net_memif1"])
            .args(["--rate", "200000", "--seconds", "2", "--flows", "4096"])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        tries += 1;
        if out.status.success() || tries == 10 {
            break out;
        }
    };
    let _ = fwd.stdin.take().map(|mut s| s.write_all(b"\n"));
    let _ = fwd.kill();
    let _ = fwd.wait();
    let _ = std::fs::remove_dir_all(&dir);
    for p in [format!("sgfwd{id}"), format!("sggen{id}")] {
        let _ = std::fs::remove_dir_all(std::path::Path::new("/var/run/dpdk").join(p));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let offered = field(json, "offered");
    // Paced: 2 s at 200 kpps is 400,000 frames, give or take a burst.
    assert!((399_000.0..=401_000.0).contains(&offered), "{json}");
    assert!(field(json, "received") >= 0.95 * offered, "{json}");
    assert!(field(json, "received") <= field(json, "sent"), "{json}");
    assert_eq!(field(json, "bad_sampled"), 0.0, "{json}");
}
