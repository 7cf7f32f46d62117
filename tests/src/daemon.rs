//! sluiced as a child process: start it (optionally inside a namespace),
//! wait until it says it is ready, stop it with SIGTERM and parse the
//! `counter NAME VALUE` report it prints. Killed and cleaned up on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The counters sluiced printed on exit.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// name -> value.
    pub counters: BTreeMap<String, u64>,
    /// Everything it logged (stderr).
    pub log: String,
}

impl Report {
    /// A counter's value; 0 when the line is absent (per-worker lines are
    /// printed only when non-zero).
    pub fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// What makes a running sluiced read its config file again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `kill -HUP`.
    Sighup,
    /// `sluicectl reload`.
    Sluicectl,
    /// Nothing but the new file: the daemon's file watcher.
    FileChange,
}

/// A running sluiced.
pub struct Daemon {
    child: Option<Child>,
    report: Option<std::thread::JoinHandle<String>>,
    log: Arc<Mutex<String>>,
    file_prefix: String,
    dir: PathBuf,
}

impl Daemon {
    /// Starts `sluiced --config <dir>/sluiced.toml` (written from
    /// `config_toml`) inside `netns` (or here), waiting up to 20 s for it to
    /// log "sluiced ready". `file_prefix` is the --file-prefix in the config.
    pub fn start(
        dir: &Path,
        config_toml: &str,
        netns: Option<&str>,
        file_prefix: &str,
        extra: &[&str],
    ) -> Daemon {
        Self::start_bin(
            &crate::sluiced_path(),
            dir,
            config_toml,
            netns,
            file_prefix,
            extra,
        )
    }

    /// [`Daemon::start`] of the sluiced binary `bin`.
    pub fn start_bin(
        bin: &Path,
        dir: &Path,
        config_toml: &str,
        netns: Option<&str>,
        file_prefix: &str,
        extra: &[&str],
    ) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = dir.join("sluiced.toml");
        std::fs::write(&cfg, config_toml).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--config").arg(&cfg).args(extra);
        cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        // The report may be larger than a pipe holds: read it as it comes,
        // or sluiced would block writing it and never exit.
        let stdout = child.stdout.take().unwrap();
        let report = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut out);
            out
        });
        let mut d = Daemon {
            child: Some(child),
            report: Some(report),
            log,
            file_prefix: file_prefix.into(),
            dir: dir.into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if d.log().contains("sluiced ready") {
                return d;
            }
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sluiced exited ({status}) before it was ready:\n{}",
                    d.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sluiced not ready after 20 s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes `config_toml` over its config file, sends SIGHUP and waits up
    /// to 10 s for the outcome: true when the reload was applied, false
    /// when it was rejected (the log says why).
    pub fn reload(&self, config_toml: &str) -> bool {
        self.reload_by(config_toml, Trigger::Sighup, None)
    }

    /// Writes `config_toml` over its config file and has it reloaded by
    /// `how` (for [`Trigger::Sluicectl`], through `socket`); waits up to
    /// 10 s for the outcome: true when applied, false when rejected.
    pub fn reload_by(&self, config_toml: &str, how: Trigger, socket: Option<&Path>) -> bool {
        let count = |log: &str, what: &str| log.matches(what).count();
        let before = self.log();
        let (ok0, bad0) = (
            count(&before, "reload applied"),
            count(&before, "reload rejected"),
        );
        // Whole or not at all: the file watcher must never read half a file.
        let tmp = self.dir.join("sluiced.toml.new");
        std::fs::write(&tmp, config_toml).unwrap();
        std::fs::rename(&tmp, self.config_path()).unwrap();
        match how {
            Trigger::Sighup => {
                let pid = self.child.as_ref().unwrap().id();
                crate::must(Command::new("kill").args(["-HUP", &pid.to_string()]));
            }
            Trigger::Sluicectl => {
                let socket = socket.expect("sluicectl reload needs the socket");
                let _ = crate::sluicectl(socket, &["reload"]);
            }
            Trigger::FileChange => {}
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if count(&log, "reload applied") > ok0 {
                return true;
            }
            if count(&log, "reload rejected") > bad0 {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome 10 s after {how:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("sluiced.toml")
    }

    /// sluiced's process id (also its main thread's, where control runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL (a crash: no report, nothing cleaned up by sluiced itself);
    /// returns what it had logged.
    pub fn kill9(mut self) -> String {
        if let Some(mut c) = self.child.take() {
            crate::must(Command::new("kill").args(["-KILL", &c.id().to_string()]));
            let _ = c.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// SIGTERM, wait for a clean exit, parse the report.
    pub fn stop(mut self) -> Report {
        let mut child = self.child.take().unwrap();
        let pid = child.id();
        // `ip netns exec` execs sluiced, so the child pid is sluiced's.
        crate::must(Command::new("kill").args(["-TERM", &pid.to_string()]));
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "sluiced did not stop within 15 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self.report.take().unwrap().join().unwrap();
        std::thread::sleep(Duration::from_millis(50)); // let the log reader finish
        let log = self.log();
        assert!(status.success(), "sluiced exited with {status}:\n{log}");
        assert!(log.contains("stopping"), "no clean stop in the log:\n{log}");
        let counters = out
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some("counter"), Some(k), Some(v)) => Some((k.to_string(), v.parse().ok()?)),
                    _ => None,
                }
            })
            .collect();
        Report { counters, log }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.file_prefix));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
