//! Packet capture on sluiced's DPDK ports: with hugepages (a secondary
//! process cannot map `--no-huge` memory), `dpdk-dumpcap` attaches to the
//! running daemon by its `--file-prefix` and writes what the external port
//! received, while the traffic goes on being forwarded; dpdk-telemetry.py
//! lists the same process's ports.

use sluice_tests::lab::{Lab, FRONTEND};
use sluice_tests::require_tools;
use std::process::Command;
use std::time::{Duration, Instant};

/// Reserves 256 more 2 MB hugepages for the test (and mounts hugetlbfs on
/// /dev/hugepages when nothing is), and gives them back.
struct Hugepages(String, bool);

impl Hugepages {
    fn reserve() -> Hugepages {
        let path = "/proc/sys/vm/nr_hugepages";
        let before = std::fs::read_to_string(path).unwrap().trim().to_string();
        let n: u64 = before.parse().unwrap();
        std::fs::write(path, (n + 256).to_string()).unwrap();
        let free = std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("HugePages_Free:")
                    .map(|v| v.trim().parse::<u64>().unwrap())
            })
            .unwrap();
        assert!(free >= 200, "only {free} hugepages could be reserved");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let mount = !mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"));
        if mount {
            let _ = std::fs::create_dir_all("/dev/hugepages");
            let ok = Command::new("mount")
                .args(["-t", "hugetlbfs", "nodev", "/dev/hugepages"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mounting hugetlbfs");
        }
        Hugepages(before, mount)
    }
}

impl Drop for Hugepages {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("umount").arg("/dev/hugepages").status();
        }
        let _ = std::fs::write("/proc/sys/vm/nr_hugepages", &self.0);
    }
}

#[test]
fn dpdk_dumpcap_captures_on_a_running_port() {
    require_tools(&["dpdk-dumpcap", "tcpdump", "curl"]);
    let _huge = Hugepages::reserve();
    let lab = Lab::new(1);
    lab.http_backends(1, 80);
    let (config, prefix) = lab.config("");
    let config = config
        .replace("\"--no-huge\", \"-m\", \"512\"", "\"-m\", \"256\"")
        .replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "")
        .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    assert!(!config.contains("--no-huge"), "{config}");
    let d = lab.start_sluiced_with(&config, &prefix);
    let out = lab.dir.join("capture.pcap");
    let mut dumpcap = Command::new("dpdk-dumpcap")
        .arg(format!("--file-prefix={prefix}"))
        .args([
            "-i",
            "net_af_packet0",
            "-P",
            "-q",
            "-a",
            "duration:15",
            "-w",
        ])
        .arg(&out)
        .spawn()
        .expect("dpdk-dumpcap");
    // Attached once the file exists (it writes the header first).
    let end = Instant::now() + Duration::from_secs(10);
    while !out.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(out.exists(), "dpdk-dumpcap did not attach:\n{}", d.log());
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let o = lab.sh(
            &lab.client(),
            &format!("curl -s --max-time 3 http://{FRONTEND}/"),
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with("b1"),
            "{o:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &dumpcap.id().to_string()])
        .status();
    let status = dumpcap.wait().unwrap();
    assert!(status.success(), "dpdk-dumpcap: {status}");
    let read = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&out)
        .arg(format!(
            "tcp and dst host {FRONTEND} and dst port 80 and tcp[tcpflags] & tcp-syn != 0"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&read.stdout);
    assert_eq!(
        text.lines().count(),
        5,
        "one SYN per connection captured:\n{text}"
    );
    drop(d);
}
