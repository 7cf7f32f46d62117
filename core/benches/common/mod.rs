//! What the `flows` and `sync` benches share: bursts of never-seen SYNs,
//! and the harness that times new-flow bursts against fresh tables.

#![allow(dead_code)] // each bench uses its own part

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use sluice_core::pipeline::Fate;
use sluice_core::wire::tcp;
use std::time::{Duration, Instant};

/// 32 frames of a burst, each in its own buffer with its length.
pub type Frames = Vec<(Vec<u8>, usize)>;

/// `count` SYNs of `frame(i, SYN)`, in bursts of 32.
pub fn syn_bursts(count: u32, frame: impl Fn(u32, tcp::Flags) -> (Vec<u8>, usize)) -> Vec<Frames> {
    (0..count / 32)
        .map(|b| {
            (0..32)
                .map(|k| frame(b * 32 + k, tcp::Flags::SYN))
                .collect()
        })
        .collect()
}

/// Benches bursts of never-seen SYNs (`syns`) as `name`: `run` processes
/// one burst in state made by `fresh`, made again whenever they run out.
/// As a NIC would, each burst's frames are written into the same 32
/// buffers just before it (outside the timing): the harness's own memory
/// must not be what is measured.
pub fn new_flows<S>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    syns: &[Frames],
    fresh: impl Fn() -> S,
    mut run: impl FnMut(&mut S, &mut Frames, &mut [Fate]),
) {
    let mut fates = [Fate::Consumed; 32];
    let mut rooms: Frames = (0..32).map(|_| (vec![0u8; 2048], 0)).collect();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let mut state = fresh();
                for burst in syns {
                    if done == iters {
                        break;
                    }
                    for (room, (f, len)) in rooms.iter_mut().zip(burst) {
                        room.0[..*len].copy_from_slice(&f[..*len]);
                        room.1 = *len;
                    }
                    let t = Instant::now();
                    run(&mut state, &mut rooms, &mut fates);
                    total += t.elapsed();
                    done += 1;
                }
            }
            total
        })
    });
}
