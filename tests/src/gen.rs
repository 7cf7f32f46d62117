//! sluice-gen as the memif tests run it: a client on two net_memif sockets
//! (`net_memif0` sends, `net_memif1` receives), its one JSON result line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one sluice-gen run reported.
#[derive(Debug, Clone)]
pub struct GenResult {
    /// The JSON line.
    pub json: String,
}

impl GenResult {
    /// A number field of the result.
    pub fn get(&self, key: &str) -> f64 {
        let j = &self.json;
        let at = j
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} in {j}"));
        let rest = &j[at + key.len() + 3..];
        rest[..rest.find([',', '}']).unwrap()]
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {j}"))
    }
}

/// Runs sluice-gen (next to sluiced) with EAL file prefix `prefix`,
/// connected to the memif servers at `tx_sock` and `rx_sock`, plus `args`.
/// Memif sockets are abstract (no file to wait for), so a run that cannot
/// connect yet is retried, once a second, up to `tries` times. Panics with
/// its output when it never succeeds.
pub fn run(prefix: &str, tx_sock: &Path, rx_sock: &Path, args: &[&str], tries: u32) -> GenResult {
    let gen = crate::sluiced_path().with_file_name("sluice-gen");
    let mut last = None;
    for _ in 0..tries.max(1) {
        let out = Command::new(&gen)
            .arg(format!(
                "--eal=--lcores=0@0 --no-huge -m 256 --no-pci --file-prefix={prefix} \
                 --vdev=net_memif0,role=client,socket={} --vdev=net_memif1,role=client,socket={}",
                tx_sock.display(),
                rx_sock.display()
            ))
            .args(["--tx", "net_memif0", "--rx", "net_memif1"])
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(prefix));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            if let Some(json) = stdout.lines().find(|l| l.starts_with('{')) {
                return GenResult { json: json.into() };
            }
        }
        last = Some(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("sluice-gen failed:\n{}", last.unwrap_or_default());
}
