//! sluice-gen: a paced packet generator and sink on one lcore, for the
//! benchmark harness (issue #7). It sends UDP frames of `--flows` flows at
//! `--rate` packets per second out of one DPDK port and counts what comes
//! back on another, checking a sample of what it receives, then prints one
//! JSON line of results. Generator and sink share a loop on purpose: on a
//! 2-core machine a separate generator process would starve the sink.
//!
//! ```text
//! sluice-gen --eal "-l 0 --no-huge -m 256 --no-pci --file-prefix=gen \
//!     --vdev=net_memif0,role=client,socket=/tmp/a.sock \
//!     --vdev=net_memif1,role=client,socket=/tmp/b.sock" \
//!   --tx net_memif0 --rx net_memif1 --rate 1000000 --seconds 10
//! ```

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use sluice_core::config::Device;
use sluice_core::craft;
use sluice_core::dpdk::{self, Burst, Eal, Mempool, Port};
use sluice_core::wire::{arp, ethernet, MacAddr};
use std::net::Ipv4Addr;

#[derive(Parser, Debug)]
#[command(
    name = "sluice-gen",
    about = "Paced UDP generator and sink on one lcore (benchmarks)"
)]
struct Args {
    /// EAL arguments, one string split on spaces.
    #[arg(long, allow_hyphen_values = true)]
    eal: String,
    /// Port to send on (vdev name).
    #[arg(long)]
    tx: String,
    /// Port to receive on (vdev name); the same as --tx is allowed.
    #[arg(long)]
    rx: String,
    /// Packets per second offered.
    #[arg(long, default_value_t = 1_000_000)]
    rate: u64,
    /// How long to send (measured).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Send at the rate this long first, uncounted (flows are created and
    /// neighbours resolved), then pause 50 ms and start counting.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Distinct flows (UDP source ports and addresses vary).
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    /// Frame size in bytes (without FCS), 60..1514.
    #[arg(long, default_value_t = 60)]
    size: usize,
    /// Destination MAC of the frames.
    #[arg(long, default_value = "02:00:00:00:00:01")]
    dst_mac: String,
    /// Destination address and port of the frames.
    #[arg(long, default_value = "203.0.113.10:53")]
    dst: String,
    /// First source address; flow i adds i / 1024 to it.
    #[arg(long, default_value = "198.18.0.1")]
    src: Ipv4Addr,
    /// Answer ARP requests for this address on the receiving port (to play
    /// the backend behind a load balancer).
    #[arg(long)]
    answer_arp: Option<Ipv4Addr>,
}

fn mac(s: &str) -> Result<MacAddr> {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad MAC {s}"))?;
    let a: [u8; 6] = b.try_into().map_err(|_| anyhow::anyhow!("bad MAC {s}"))?;
    Ok(MacAddr(a))
}

/// Marker the sink looks for in every payload, so a frame that comes back
/// mangled (or is not ours) is counted as bad.
const MAGIC: &[u8; 8] = b"SLUICEGN";

/// The reply to an ARP request for `ip`, from `mac`.
fn arp_answer(frame: &[u8], ip: Ipv4Addr, mac: MacAddr) -> Option<Vec<u8>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::EtherType::Arp {
        return None;
    }
    let p = arp::Packet::new_checked(eth.payload()).ok()?;
    let r = arp::Repr::parse(&p);
    (r.operation == arp::Operation::Request && r.target_ip == ip)
        .then(|| craft::arp_reply(mac, ip, r.sender_hw, r.sender_ip))
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !(60..=1514).contains(&a.size) {
        bail!("--size must be 60..1514");
    }
    let (dst_ip, dst_port) = a
        .dst
        .split_once(':')
        .and_then(|(h, p)| Some((h.parse::<Ipv4Addr>().ok()?, p.parse::<u16>().ok()?)))
        .context("--dst ADDRESS:PORT")?;
    let dst_mac = mac(&a.dst_mac)?;
    let eal_args: Vec<String> = a.eal.split_whitespace().map(String::from).collect();
    let _eal = Eal::init(&eal_args).context("EAL")?;
    let pool = Mempool::new("gen_mbufs", 16383, -1).context("mbuf pool")?;
    let tx_port = Port::start(&Device::Name(a.tx.clone()), 1, 1, 0, 1500, &pool)
        .with_context(|| a.tx.clone())?;
    let rx_port = if a.rx == a.tx {
        None
    } else {
        Some(
            Port::start(&Device::Name(a.rx.clone()), 1, 1, 0, 1500, &pool)
                .with_context(|| a.rx.clone())?,
        )
    };
    let src_mac = tx_port.mac();
    // One template per flow: payload = MAGIC + padding up to `size`.
    let payload_len = a.size - 14 - 20 - 8;
    let mut payload = vec![0u8; payload_len.max(MAGIC.len())];
    payload[..MAGIC.len()].copy_from_slice(MAGIC);
    let flows: Vec<Vec<u8>> = (0..a.flows)
        .map(|i| {
            let src = Ipv4Addr::from(u32::from(a.src) + i / 1024);
            let sport = 1024 + (i % 1024) as u16 * 61 % 64000;
            craft::udp_v4(src_mac, dst_mac, (src, sport), (dst_ip, dst_port), &payload)
        })
        .collect();
    // Wait for links (memif connects asynchronously).
    let t_link = std::time::Instant::now();
    while !(tx_port.link().up && rx_port.as_ref().is_none_or(|p| p.link().up)) {
        if t_link.elapsed().as_secs() > 10 {
            bail!("links not up after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut txq = tx_port.tx_queue(0);
    let sink = rx_port.as_ref().unwrap_or(&tx_port);
    let mut rxq = sink.rx_queue(0);
    let mut arp_txq = rx_port.as_ref().map(|p| p.tx_queue(0));
    let sink_mac = sink.mac();
    let mut arp_out = Burst::default();
    let mut arp_answered = 0u64;
    let hz = dpdk::tsc_hz() as f64;
    let per_packet = hz / a.rate.max(1) as f64;
    let mut warming = a.warmup > 0.0;
    let mut start = dpdk::rdtsc();
    let mut stop = start + ((if warming { a.warmup } else { a.seconds }) * hz) as u64;
    let mut drain_until = stop + ((if warming { 0.05 } else { 0.5 }) * hz) as u64;
    let (mut offered, mut sent, mut received, mut bad, mut alloc_failed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut next = 0u32;
    let mut tx = Burst::default();
    let mut rx = Burst::default();
    loop {
        let now = dpdk::rdtsc();
        if now >= drain_until {
            if !warming {
                break;
            }
            // Warm-up over, after 50 ms of quiet: count from here.
            warming = false;
            (offered, sent, received, bad, alloc_failed) = (0, 0, 0, 0, 0);
            start = dpdk::rdtsc();
            stop = start + (a.seconds * hz) as u64;
            drain_until = stop + (0.5 * hz) as u64;
            continue;
        }
        if now < stop {
            // Packets due by now, at most one burst at a time.
            let due = ((now - start) as f64 / per_packet) as u64;
            let n = due.saturating_sub(offered).min(32);
            for _ in 0..n {
                let Some(mut m) = pool.alloc() else {
                    alloc_failed += 1;
                    break;
                };
                let f = &flows[next as usize];
                next = (next + 1) % a.flows;
                let (room, _) = m.room_and_len_mut();
                room[..f.len()].copy_from_slice(f);
                m.set_len(f.len());
                let _ = tx.push(m);
            }
            offered += n;
            sent += txq.tx(&mut tx) as u64;
            tx.clear(); // what the queue refused is dropped: loss at the source
        }
        if rxq.rx(&mut rx, 32) > 0 {
            for i in 0..rx.len() {
                if let Some(m) = rx.get(i) {
                    if let Some(reply) = a
                        .answer_arp
                        .and_then(|ip| arp_answer(m.data(), ip, sink_mac))
                    {
                        if let Some(mut r) = pool.alloc() {
                            let (room, _) = r.room_and_len_mut();
                            room[..reply.len()].copy_from_slice(&reply);
                            r.set_len(reply.len());
                            let _ = arp_out.push(r);
                            arp_answered += 1;
                        }
                        continue;
                    }
                    received += 1;
                    // Check every 64th frame's payload marker.
                    if received % 64 == 0 {
                        let d = m.data();
                        let ok = d.len() >= 42 + MAGIC.len() && &d[42..42 + MAGIC.len()] == MAGIC;
                        bad += u64::from(!ok);
                    }
                }
            }
            rx.clear();
            if !arp_out.is_empty() {
                arp_txq.as_mut().unwrap_or(&mut txq).tx(&mut arp_out);
                arp_out.clear();
            }
        }
    }
    let secs = a.seconds;
    // The loop kept up when it offered what the rate asked for.
    let on_time = offered as f64 >= 0.99 * a.rate as f64 * secs;
    println!(
        "{{\"offered\":{offered},\"sent\":{sent},\"received\":{received},\"bad_sampled\":{bad},\"alloc_failed\":{alloc_failed},\"arp_answered\":{arp_answered},\"on_time\":{on_time},\"seconds\":{secs},\"offered_pps\":{:.0},\"received_pps\":{:.0},\"loss\":{:.6}}}",
        offered as f64 / secs,
        received as f64 / secs,
        1.0 - received as f64 / (offered.max(1)) as f64
    );
    drop(rx_port);
    drop(tx_port);
    Ok(())
}
