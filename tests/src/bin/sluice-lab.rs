//! `make run`: builds the namespace lab, runs sluiced on conf/lab.toml and
//! shows it working from the client and backend side, then tears it all
//! down. Exits non-zero if any check fails.

use sluice_tests::lab::*;
use std::io::{IsTerminal, Write};
use std::process::{ExitCode, Output};
use std::time::Instant;

struct Demo {
    failed: usize,
    rows: Vec<(String, bool)>,
}

impl Demo {
    fn check(&mut self, what: &str, f: impl FnOnce() -> Output) {
        let live = std::io::stdout().is_terminal();
        if live {
            print!("  .. {what}");
            let _ = std::io::stdout().flush();
        }
        let t = Instant::now();
        let out = f();
        let ok = out.status.success();
        let ms = t.elapsed().as_millis();
        let mark = if ok { "ok" } else { "FAIL" };
        if live {
            println!("\r\x1b[K  {mark} {what} ({ms} ms)");
        } else {
            println!("  {mark} {what} ({ms} ms)");
        }
        if !ok {
            self.failed += 1;
            for l in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                println!("       {l}");
            }
        }
        self.rows.push((what.into(), ok));
    }
}

fn main() -> ExitCode {
    println!("sluice lab: building namespaces (client, internet, 3 backends, two switches)...");
    let lab = Lab::named("sldemo", 3);
    println!(
        "sluice lab: starting sluiced on conf/lab.toml in namespace {}",
        lab.lb()
    );
    let d = lab.start_sluiced("");
    println!(
        "sluice lab: sluiced is up (ext0 {}, int0 {})\n",
        lab.mac(&lab.lb(), "ext0"),
        lab.mac(&lab.lb(), "int0")
    );
    let mut demo = Demo {
        failed: 0,
        rows: Vec::new(),
    };
    let (c, b1) = (lab.client(), lab.backend(0));
    demo.check(&format!("client arping {SLUICE_EXT}"), || {
        lab.exec(
            &c,
            &[
                "arping", "-c", "2", "-w", "2000000", "-i", "eth0", SLUICE_EXT,
            ],
        )
    });
    demo.check(&format!("client ping {SLUICE_EXT}"), || {
        lab.exec(&c, &["ping", "-c", "3", "-i", "0.2", "-W", "2", SLUICE_EXT])
    });
    demo.check(&format!("client ping frontend {FRONTEND}"), || {
        lab.exec(&c, &["ping", "-c", "3", "-i", "0.2", "-W", "2", FRONTEND])
    });
    demo.check(&format!("client ping6 {SLUICE_EXT6}"), || {
        lab.exec(
            &c,
            &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", SLUICE_EXT6],
        )
    });
    for i in 0..3 {
        let b = lab.backend(i);
        demo.check(
            &format!("backend {} ping {SLUICE_INT}", backend_addr(i)),
            || lab.exec(&b, &["ping", "-c", "2", "-i", "0.2", "-W", "2", SLUICE_INT]),
        );
    }
    demo.check(&format!("backend arping {SLUICE_INT}"), || {
        lab.exec(
            &b1,
            &[
                "arping", "-c", "2", "-w", "2000000", "-i", "eth0", SLUICE_INT,
            ],
        )
    });
    demo.check("ping 203.0.113.77 (not Sluice's) gets no answer", || {
        let mut out = lab.exec(&c, &["ping", "-c", "1", "-W", "1", "203.0.113.77"]);
        out.status = if out.status.success() {
            failed_status()
        } else {
            ok_status()
        };
        out
    });
    println!("\nsluice lab: stopping sluiced");
    let r = d.stop();
    println!("\n  {:<52} result", "check");
    for (what, ok) in &demo.rows {
        println!("  {what:<52} {}", if *ok { "ok" } else { "FAIL" });
    }
    println!(
        "\n  counters: rx {}  tx {}  arp_replies {}  nd_adverts {}  echo_replies {}  drops {}",
        r.get("rx"),
        r.get("tx"),
        r.get("arp_replies"),
        r.get("nd_adverts"),
        r.get("echo_replies"),
        r.get("drop.total")
    );
    for (k, v) in r
        .counters
        .iter()
        .filter(|(k, v)| k.starts_with("drop.") && *k != "drop.total" && **v > 0)
    {
        println!("    {k} {v}");
    }
    drop(lab);
    println!(
        "\nsluice lab: torn down. {} of {} checks passed.",
        demo.rows.len() - demo.failed,
        demo.rows.len()
    );
    if demo.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn ok_status() -> std::process::ExitStatus {
    std::process::Command::new("true").status().expect("true")
}

fn failed_status() -> std::process::ExitStatus {
    std::process::Command::new("false").status().expect("false")
}
