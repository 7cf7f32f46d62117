//! The EAL arguments against the rest of the config, before EAL runs:
//! what `rte_eal_init` would only find at start, or report in words that
//! point the wrong way (a missing hugepage reservation is "Permission
//! denied"). `sluiced --check-config` and the start both run these.

use super::{Config, ConfigError, Device};
use std::collections::BTreeSet;

/// What the EAL arguments say about lcores, devices and memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EalView {
    /// Lcores of `-l`, `-c` or `--lcores`; `None` when none is given (EAL
    /// then takes every CPU).
    pub lcores: Option<BTreeSet<u32>>,
    /// `--main-lcore`; EAL's default is the lowest lcore.
    pub main: Option<u32>,
    /// Names of `--vdev` devices (before their first comma).
    pub vdevs: Vec<String>,
    /// `-a`/`--allow` PCI addresses.
    pub allow: Vec<String>,
    /// `--no-huge`.
    pub no_huge: bool,
    /// `--no-pci`.
    pub no_pci: bool,
}

/// Lcore ids of a list such as `0-3,8,10-11` (`-l`), or of `--lcores`
/// groups such as `0@0,1@1` or `(0,1)@2`: the ids before each `@`.
fn lcore_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    for item in items {
        let ids = item.split('@').next()?;
        let ids = ids.trim_start_matches('(').trim_end_matches(')');
        for part in ids.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a || b - a > 1024 {
                return None;
            }
            out.extend(a..=b);
        }
    }
    Some(out)
}

fn coremask(s: &str) -> Option<BTreeSet<u32>> {
    let m = u128::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()?;
    Some((0..128).filter(|b| m >> b & 1 == 1).collect())
}

impl EalView {
    /// Reads the arguments the way EAL does for the options checked here
    /// (`-lLIST` and `-l LIST`, `--opt=v` and `--opt v`).
    pub fn parse(args: &[String]) -> EalView {
        let mut v = EalView::default();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let (opt, inline) = match a.split_once('=') {
                Some((o, val)) if a.starts_with("--") => (o, Some(val.to_string())),
                _ if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") => {
                    (&a[..2], Some(a[2..].to_string()))
                }
                _ => (a.as_str(), None),
            };
            let takes = matches!(
                opt,
                "-l" | "-c" | "--lcores" | "--main-lcore" | "--vdev" | "-a" | "--allow"
            );
            let val = if takes {
                inline.or_else(|| it.next().cloned())
            } else {
                None
            };
            match (opt, val) {
                ("-l", Some(s)) => v.lcores = lcore_list(&s),
                ("--lcores", Some(s)) => v.lcores = lcore_list(&s),
                ("-c", Some(s)) => v.lcores = coremask(&s),
                ("--main-lcore", Some(s)) => v.main = s.parse().ok(),
                ("--vdev", Some(s)) => v
                    .vdevs
                    .push(s.split(',').next().unwrap_or_default().to_string()),
                ("-a" | "--allow", Some(s)) => v
                    .allow
                    .push(s.split(',').next().unwrap_or_default().to_string()),
                ("--no-huge", _) => v.no_huge = true,
                ("--no-pci", _) => v.no_pci = true,
                _ => {}
            }
        }
        v
    }

    /// The main lcore EAL will pick.
    pub fn main_lcore(&self) -> Option<u32> {
        self.main
            .or_else(|| self.lcores.as_ref().and_then(|l| l.first().copied()))
    }
}

/// A PCI address as EAL writes it: `0000:3b:00.0` or `3b:00.0`.
pub fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [d, b, df] if hex(d, 4) => (*b, *df),
        [b, df] => (*b, *df),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(bus, 2) && hex(dev, 2) && func.len() == 1 && func.chars().all(|c| c.is_ascii_digit())
}

fn same_pci(a: &str, b: &str) -> bool {
    let full = |s: &str| {
        if s.matches(':').count() == 1 {
            format!("0000:{s}").to_ascii_lowercase()
        } else {
            s.to_ascii_lowercase()
        }
    };
    full(a) == full(b)
}

/// Free hugepages on the host, as `/proc/meminfo` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hugepages {
    /// `HugePages_Free` (of the default size).
    pub free: u64,
    /// A hugetlbfs is mounted.
    pub mounted: bool,
}

impl Hugepages {
    /// This host's.
    pub fn of_host() -> Hugepages {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let free = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("HugePages_Free:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mounted = mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"));
        Hugepages { free, mounted }
    }
}

/// Every disagreement between `[dpdk] eal_args` and the config, and the
/// host's hugepages when EAL would need them.
pub fn check_eal(cfg: &Config, huge: Hugepages) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let d = &cfg.dpdk;
    let eal = EalView::parse(&d.eal_args);
    if let Some(lcores) = &eal.lcores {
        let main = eal.main_lcore();
        let list = lcores
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for w in &d.workers {
            if !lcores.contains(w) {
                errors.push(ConfigError::new(
                    "[dpdk]",
                    "workers",
                    format!("lcore {w} is not among eal_args' lcores ({list}): add it to -l, or pick a listed lcore"),
                ));
            } else if Some(*w) == main {
                errors.push(ConfigError::new(
                    "[dpdk]",
                    "workers",
                    format!("lcore {w} is the main lcore (control runs there): give -l one more lcore, or set --main-lcore to another"),
                ));
            }
        }
    }
    for p in &cfg.ports {
        let Device::Name(name) = &p.device else {
            continue;
        };
        let obj = format!("port \"{}\"", p.name);
        if eal.vdevs.iter().any(|v| v == name) {
            continue;
        }
        if is_pci_address(name) {
            if eal.no_pci {
                errors.push(ConfigError::new(&obj, "device", format!("{name} is a PCI device but eal_args has --no-pci: drop --no-pci, or name a --vdev")));
            } else if !eal.allow.is_empty() && !eal.allow.iter().any(|a| same_pci(a, name)) {
                errors.push(ConfigError::new(&obj, "device", format!("{name} is not among the allow-listed PCI devices (-a {}): add -a {name} to eal_args", eal.allow.join(" -a "))));
            }
            continue;
        }
        let vdevs = if eal.vdevs.is_empty() {
            "none".to_string()
        } else {
            eal.vdevs.join(", ")
        };
        errors.push(ConfigError::new(&obj, "device", format!("\"{name}\" is neither a --vdev of eal_args (those: {vdevs}) nor a PCI address: add --vdev={name},... or name the NIC's PCI address")));
    }
    if !eal.no_huge && (huge.free == 0 || !huge.mounted) {
        let what = if huge.free == 0 {
            "no free hugepages (HugePages_Free is 0 in /proc/meminfo)"
        } else {
            "no hugetlbfs is mounted"
        };
        errors.push(ConfigError::new(
            "[dpdk]",
            "eal_args",
            format!("{what}, and eal_args has no --no-huge: reserve them (echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages; docs/bare-metal.md), or add --no-huge -m 1024 for a lab"),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_the_options_in_both_spellings() {
        let v = EalView::parse(&args("-l 2-4,8 --main-lcore 3 -a 0000:3b:00.0 --vdev=net_tap0,iface=x --vdev net_null1 --no-huge"));
        assert_eq!(v.lcores, Some([2, 3, 4, 8].into()));
        assert_eq!(v.main_lcore(), Some(3));
        assert_eq!(v.vdevs, ["net_tap0", "net_null1"]);
        assert_eq!(v.allow, ["0000:3b:00.0"]);
        assert!(v.no_huge && !v.no_pci);
        let v = EalView::parse(&args("-l0-1 --lcores=(0,1)@0,2@1"));
        assert_eq!(v.lcores, Some([0, 1, 2].into()));
        assert_eq!(EalView::parse(&args("-c 0x6")).lcores, Some([1, 2].into()));
        assert_eq!(EalView::parse(&args("-c 0x6")).main_lcore(), Some(1));
    }

    #[test]
    fn pci_addresses() {
        assert!(is_pci_address("0000:3b:00.0"));
        assert!(is_pci_address("3b:00.1"));
        assert!(!is_pci_address("net_tap0"));
        assert!(same_pci("3b:00.0", "0000:3B:00.0"));
    }

    const HUGE: Hugepages = Hugepages {
        free: 512,
        mounted: true,
    };

    fn config(eal: &str, workers: &str, device: &str) -> Config {
        Config::from_toml_str(&format!(
            r#"
[dpdk]
eal_args = [{eal}]
workers = [{workers}]
[[port]]
name = "ext"
device = "{device}"
role = "both"
addresses = ["203.0.113.1/24"]
"#
        ))
        .unwrap()
    }

    fn found(errors: &[ConfigError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.object.clone(), e.field.clone()))
            .collect()
    }

    #[test]
    fn a_matching_config_passes() {
        let c = config(
            r#""-l", "0-1", "--no-huge", "--vdev=net_null0""#,
            "1",
            "net_null0",
        );
        assert_eq!(
            check_eal(
                &c,
                Hugepages {
                    free: 0,
                    mounted: false
                }
            ),
            vec![]
        );
        let c = config(
            r#""-l", "2-3", "--main-lcore", "2", "-a", "3b:00.0""#,
            "3",
            "0000:3b:00.0",
        );
        assert_eq!(check_eal(&c, HUGE), vec![]);
    }

    #[test]
    fn a_worker_outside_the_lcore_list_or_on_the_main_lcore() {
        let c = config(
            r#""-l", "0-1", "--no-huge", "--vdev=net_null0""#,
            "1, 2",
            "net_null0",
        );
        let e = check_eal(&c, HUGE);
        assert_eq!(found(&e), [("[dpdk]".into(), "workers".into())]);
        assert!(e[0].reason.contains("lcore 2 is not among"), "{}", e[0]);
        let c = config(
            r#""-l", "0-1", "--no-huge", "--vdev=net_null0""#,
            "0",
            "net_null0",
        );
        assert!(check_eal(&c, HUGE)[0].reason.contains("main lcore"));
    }

    #[test]
    fn a_device_eal_will_not_have() {
        let c = config(
            r#""-l", "0-1", "--no-huge", "--vdev=net_null1""#,
            "1",
            "net_null0",
        );
        let e = check_eal(&c, HUGE);
        assert_eq!(found(&e), [("port \"ext\"".into(), "device".into())]);
        assert!(e[0].reason.contains("--vdev=net_null0"), "{}", e[0]);
        let c = config(r#""-l", "0-1", "-a", "0000:3b:00.1""#, "1", "0000:3b:00.0");
        assert!(check_eal(&c, HUGE)[0].reason.contains("-a 0000:3b:00.0"));
        let c = config(
            r#""-l", "0-1", "--no-pci", "--no-huge""#,
            "1",
            "0000:3b:00.0",
        );
        assert!(check_eal(&c, HUGE)[0].reason.contains("--no-pci"));
    }

    #[test]
    fn hugepages_missing_say_so() {
        let c = config(r#""-l", "0-1", "--vdev=net_null0""#, "1", "net_null0");
        let e = check_eal(
            &c,
            Hugepages {
                free: 0,
                mounted: true,
            },
        );
        assert_eq!(found(&e), [("[dpdk]".into(), "eal_args".into())]);
        assert!(e[0].reason.contains("HugePages_Free is 0"), "{}", e[0]);
        assert!(!check_eal(
            &c,
            Hugepages {
                free: 10,
                mounted: false
            }
        )
        .is_empty());
        assert!(check_eal(&c, HUGE).is_empty());
    }
}
