//! Restart adoption: a table in a file is found again whole by the next
//! process, flows cut short by a `kill -9` are taken out, and a file of
//! another shape is refused.

use super::tests::{check, flow};
use super::*;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-persist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_reopened_table_keeps_its_flows_and_takes_new_ones() {
    let d = dir("reopen");
    let path = d.join("flows");
    let (t, opened) = FlowTable::<crate::family::V4>::open(&path, 1000, 1).unwrap();
    assert_eq!(opened, Opened::Fresh(None));
    assert!(t.is_mapped());
    for i in 0..500 {
        t.insert(&flow(i)).unwrap();
    }
    drop(t);
    let (t, opened) = FlowTable::<crate::family::V4>::open(&path, 1000, 1).unwrap();
    assert_eq!(
        opened,
        Opened::Adopted {
            flows: 500,
            dropped: 0
        }
    );
    assert_eq!(t.len(), 500);
    assert!((0..500).all(|i| check(&t, i)), "every flow, both keys");
    // New flows take the entries after them (these test keys fill two-choice
    // buckets from about 740 of 1000: the table's known limit).
    for i in 500..700 {
        t.insert(&flow(i)).unwrap();
    }
    assert_eq!(t.len(), 700);
    assert!((0..700).all(|i| check(&t, i)));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn flows_a_kill_cut_short_are_taken_out_and_their_entries_reused() {
    let d = dir("cut");
    let path = d.join("flows");
    let (t, _) = FlowTable::<crate::family::V4>::open(&path, 64, 1).unwrap();
    for i in 0..10 {
        t.insert(&flow(i)).unwrap();
    }
    // Flow 3: an insert stopped after its reply key was placed.
    let (i3, _) = t.lookup(&flow(3).key[0]).unwrap();
    assert!(t.unplace(&flow(3).key[0], Dir::Original, i3));
    // Flow 5: an entry written but never placed.
    let (i5, _) = t.lookup(&flow(5).key[0]).unwrap();
    assert!(t.unplace(&flow(5).key[0], Dir::Original, i5));
    assert!(t.unplace(&flow(5).key[1], Dir::Reply, i5));
    // Flow 7: a removal stopped after the entry was freed, its slots not.
    let (i7, _) = t.lookup(&flow(7).key[0]).unwrap();
    t.entries[i7 as usize].state.fetch_and(!LIVE, Relaxed);
    drop(t);
    let (t, opened) = FlowTable::<crate::family::V4>::open(&path, 64, 1).unwrap();
    assert_eq!(
        opened,
        Opened::Adopted {
            flows: 7,
            dropped: 2
        }
    );
    for i in [3, 5, 7] {
        assert!(t.lookup(&flow(i).key[0]).is_none(), "flow {i} is gone");
        assert!(t.lookup(&flow(i).key[1]).is_none(), "flow {i}'s reply too");
    }
    assert!([0, 1, 2, 4, 6, 8, 9].iter().all(|&i| check(&t, i)));
    // The three entries are free again: 54 never used plus them.
    for i in 100..157 {
        t.insert(&flow(i)).unwrap();
    }
    assert!(t.insert(&flow(157)).is_err(), "exactly the capacity");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_file_of_another_shape_is_refused_and_replaced() {
    let d = dir("shape");
    let path = d.join("flows");
    let (t, _) = FlowTable::<crate::family::V4>::open(&path, 1000, 1).unwrap();
    t.insert(&flow(1)).unwrap();
    drop(t);
    // Another capacity (here, of the same file size): refused by name.
    let (t, opened) = FlowTable::<crate::family::V4>::open(&path, 999, 1).unwrap();
    let Opened::Fresh(Some(why)) = opened else {
        panic!("{opened:?}")
    };
    assert!(why.contains("capacity"), "{why}");
    assert!(t.is_empty() && t.lookup(&flow(1).key[0]).is_none());
    drop(t);
    // Another family.
    let (t6, opened) = FlowTable::<crate::family::V6>::open(&path, 999, 1).unwrap();
    assert!(matches!(opened, Opened::Fresh(Some(_))), "{opened:?}");
    drop(t6);
    // A file cut short (no magic yet) or of another size.
    std::fs::write(&path, b"not a table").unwrap();
    let (_, opened) = FlowTable::<crate::family::V4>::open(&path, 1000, 1).unwrap();
    let Opened::Fresh(Some(why)) = opened else {
        panic!("{opened:?}")
    };
    assert!(why.contains("bytes"), "{why}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_table_in_use_is_not_opened_twice() {
    let d = dir("lock");
    let path = d.join("flows");
    let (_t, _) = FlowTable::<crate::family::V4>::open(&path, 100, 1).unwrap();
    let e = FlowTable::<crate::family::V4>::open(&path, 100, 1).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
