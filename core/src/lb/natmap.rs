//! Port maps of inbound NAT pool rules: which frontend port each member
//! holds. A member keeps its port while it stays in the pool, across reloads
//! and restarts (the map lives in the state directory, written to a temp
//! file and renamed); new members take the lowest free port; a full range
//! rejects the config that adds a member.

use crate::config::{ConfigError, NatPoolRule};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Member address -> frontend port.
pub type PortMap = BTreeMap<IpAddr, u16>;

/// The file that holds `rule`'s map.
pub fn path(state_dir: &Path, rule: &str) -> PathBuf {
    state_dir.join(format!("nat-pool-{rule}.map"))
}

/// Reads a map; a missing file is an empty map. Lines are `address port`;
/// lines that do not parse are skipped (and reported).
pub fn load(state_dir: &Path, rule: &str) -> (PortMap, Vec<String>) {
    let mut map = PortMap::new();
    let mut bad = Vec::new();
    let Ok(text) = std::fs::read_to_string(path(state_dir, rule)) else {
        return (map, bad);
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut it = line.split_whitespace();
        match (
            it.next().and_then(|a| a.parse::<IpAddr>().ok()),
            it.next().and_then(|p| p.parse::<u16>().ok()),
        ) {
            (Some(a), Some(p)) => {
                map.insert(a, p);
            }
            _ => bad.push(line.to_string()),
        }
    }
    (map, bad)
}

/// Writes a map atomically (temp file, fsync, rename).
pub fn store(state_dir: &Path, rule: &str, map: &PortMap) -> std::io::Result<()> {
    let mut text = String::new();
    for (a, p) in map {
        text.push_str(&format!("{a} {p}\n"));
    }
    write_atomic(&path(state_dir, rule), &text)
}

/// Replaces the file at `dst` with `text` so that a reader (or a restart
/// after a crash) sees either the old or the new content: a temp file next
/// to it, fsync, rename; on failure the temp file is removed. Creates the
/// directory.
pub fn write_atomic(dst: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = dst.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dst.with_file_name(name);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dst)
    });
    if written.is_err() {
        // A full disk keeps nothing half-written of ours.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The map for `rule` given the pool's current `members` and the previous
/// map: members that stay keep their port, new ones take the lowest free
/// port of the range, members gone free theirs.
pub fn assign(
    rule: &NatPoolRule,
    members: &[IpAddr],
    previous: &PortMap,
) -> Result<PortMap, ConfigError> {
    let start = u32::from(rule.frontend_port_start);
    let end = start + u32::from(rule.max_members); // exclusive
    let in_range = |p: u16| (start..end).contains(&u32::from(p));
    let mut map = PortMap::new();
    for m in members {
        if let Some(&p) = previous.get(m).filter(|&&p| in_range(p)) {
            map.insert(*m, p);
        }
    }
    let mut taken: Vec<bool> = vec![false; (end - start) as usize];
    for &p in map.values() {
        taken[(u32::from(p) - start) as usize] = true;
    }
    let mut free = (0..taken.len()).filter(|&i| !taken[i]);
    for m in members {
        if map.contains_key(m) {
            continue;
        }
        let Some(i) = free.next() else {
            return Err(ConfigError::new(
                format!("nat_pool_rule \"{}\"", rule.name),
                "max_members",
                format!(
                    "ports {}..={} are all held by other members; {m} cannot get one \
                     (raise max_members or remove a member)",
                    start,
                    end - 1
                ),
            ));
        };
        map.insert(*m, (start + i as u32) as u16);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;

    fn rule(max: u16) -> NatPoolRule {
        NatPoolRule {
            name: "ssh".into(),
            frontend: 0,
            protocol: Protocol::Tcp,
            frontend_port_start: 50000,
            max_members: max,
            backend_port: 22,
            pool: 0,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn members_keep_ports_and_newcomers_take_free_ones() {
        let r = rule(3);
        let m0 = assign(&r, &[ip(11), ip(12), ip(13)], &PortMap::new()).unwrap();
        assert_eq!(
            m0.values().copied().collect::<Vec<_>>(),
            [50000, 50001, 50002]
        );
        let m1 = assign(&r, &[ip(12), ip(13)], &m0).unwrap();
        assert_eq!((m1[&ip(12)], m1[&ip(13)]), (50001, 50002));
        let m2 = assign(&r, &[ip(12), ip(13), ip(14)], &m1).unwrap();
        assert_eq!(m2[&ip(14)], 50000, "the freed port");
        let e = assign(&r, &[ip(12), ip(13), ip(14), ip(15)], &m2).unwrap_err();
        assert_eq!(e.object, "nat_pool_rule \"ssh\"");
        assert_eq!(e.field, "max_members");
        assert!(e.reason.contains("10.0.0.15"), "{}", e.reason);
    }

    #[test]
    fn a_shrunk_range_moves_only_members_outside_it() {
        let prev: PortMap = [(ip(11), 50000), (ip(12), 50005)].into_iter().collect();
        let m = assign(&rule(3), &[ip(11), ip(12)], &prev).unwrap();
        assert_eq!((m[&ip(11)], m[&ip(12)]), (50000, 50001));
    }

    #[test]
    fn store_and_load_round_trip_atomically() {
        let dir = std::env::temp_dir().join(format!("sluice-natmap-{}", std::process::id()));
        let map: PortMap = [(ip(11), 50000), (ip(12), 50001)].into_iter().collect();
        store(&dir, "ssh", &map).unwrap();
        assert!(!path(&dir, "ssh").with_extension("map.tmp").exists());
        std::fs::write(
            path(&dir, "bad"),
            "10.0.0.1 50000\nnot a line\n10.0.0.2 99999\n",
        )
        .unwrap();
        let (back, bad) = load(&dir, "ssh");
        assert_eq!(back, map);
        assert!(bad.is_empty());
        let (m, bad) = load(&dir, "bad");
        assert_eq!(m.len(), 1);
        assert_eq!(bad.len(), 2);
        assert_eq!(load(&dir, "missing").0.len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
