//! sluice-gen: a paced packet generator and sink on one lcore, for the
//! benchmark harness (issue #7). It sends UDP datagrams or TCP segments of
//! `--flows` flows (or a SYN of a new flow in every frame) at `--rate`
//! packets per second out of one DPDK port and counts what comes back on
//! another, checking a sample of what it receives, then prints one JSON
//! line of results. Generator and sink share a loop on purpose: on a
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
use sluice_core::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod frames;
use frames::*;

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
    /// Packets per second during the warm-up (default: `--rate`).
    #[arg(long)]
    warmup_rate: Option<u64>,
    /// Distinct flows. Flow i goes to destination port `dst` port +
    /// i % dst-ports, from source address `src` + (i / dst-ports) %
    /// src-count, source port 1024 + (i / (dst-ports * src-count)) % 60000.
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    /// Distinct source addresses.
    #[arg(long, default_value_t = 64)]
    src_count: u32,
    /// Distinct destination ports.
    #[arg(long, default_value_t = 1)]
    dst_ports: u32,
    /// udp: datagrams of `--flows` flows. tcp: the first pass over the
    /// flows is SYNs (send it in the warm-up), then ACK segments with data.
    /// syn: every frame a SYN of a new flow (destination port, source
    /// address and source port walk their ranges in that order), to
    /// measure new flows per second. conn: whole TCP connections at
    /// `--rate` per second: the --tx port plays the clients (SYN, then the
    /// request, then FIN), the --rx port the servers (SYN-ACK, the response
    /// with FIN, the last ACK); `received` counts completed connections.
    #[arg(long, default_value = "udp", value_parser = ["udp", "tcp", "syn", "conn"])]
    proto: String,
    /// tcp: passes of SYNs over the flows before the ACKs (a SYN lost on
    /// the way leaves its flow uncreated; another pass creates it).
    #[arg(long, default_value_t = 2)]
    syn_passes: u32,
    /// Frame size in bytes (without FCS), 60..1514.
    #[arg(long, default_value_t = 60)]
    size: usize,
    /// Destination MAC of the frames.
    #[arg(long, default_value = "02:00:00:00:00:01")]
    dst_mac: String,
    /// Destination address and port of the frames (`[v6]:port` for IPv6,
    /// udp mode only).
    #[arg(long, default_value = "203.0.113.10:53")]
    dst: String,
    /// First source address (of the destination's family); flow i adds
    /// i / 1024 to it.
    #[arg(long, default_value = "198.18.0.1")]
    src: IpAddr,
    /// Answer ARP requests (IPv4) or neighbour solicitations (IPv6) for
    /// this address on the receiving port (to play the backend behind a
    /// load balancer).
    #[arg(long)]
    answer_arp: Option<IpAddr>,
    /// Of the frames offered, this many a second are TCP ACKs from
    /// 203.0.113.254 to `--punt-dst` (BGP to Sluice's own address: what
    /// its exception path hands the kernel), in place of flow frames.
    #[arg(long, default_value_t = 0)]
    punt: u64,
    /// Where the `--punt` frames go.
    #[arg(long, default_value = "203.0.113.1:179")]
    punt_dst: std::net::SocketAddrV4,
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

fn main() -> Result<()> {
    let a = Args::parse();
    if !(60..=1514).contains(&a.size) {
        bail!("--size must be 60..1514");
    }
    let (dst_ip, dst_port) = a
        .dst
        .parse::<std::net::SocketAddr>()
        .map(|s| (s.ip(), s.port()))
        .context("--dst ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")?;
    let v6 = dst_ip.is_ipv6();
    if v6 != a.src.is_ipv6() {
        bail!("--src and --dst must be of one family");
    }
    if v6 && a.proto != "udp" {
        bail!("IPv6 frames are udp mode only");
    }
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
    let tcp = a.proto != "udp";
    let l4_header = if tcp { 20 } else { 8 };
    let payload_at = 14 + if v6 { 40 } else { 20 } + l4_header;
    let payload_len = a.size.saturating_sub(payload_at).max(MAGIC.len());
    let mut payload = vec![0u8; payload_len];
    payload[..MAGIC.len()].copy_from_slice(MAGIC);
    let (src_count, dst_ports) = (a.src_count.max(1), a.dst_ports.max(1));
    // Flow i: source address, source port, destination port.
    let walk = |i: u32| {
        let n = (i / dst_ports) % src_count;
        let src = match a.src {
            IpAddr::V4(s) => IpAddr::V4(Ipv4Addr::from(u32::from(s) + n)),
            IpAddr::V6(s) => IpAddr::V6(Ipv6Addr::from(u128::from(s) + u128::from(n))),
        };
        let sport = 1024 + ((i / dst_ports / src_count) % 60000) as u16;
        let dport = dst_port.wrapping_add((i % dst_ports) as u16);
        ((src, sport), (dst_ip, dport))
    };
    // The IPv4 modes (tcp, syn, conn) take IPv4 tuples.
    let tuple = |i: u32| {
        let ((s, sp), (d, dp)) = walk(i);
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        ((v4(s), sp), (v4(d), dp))
    };
    let segment = |i: u32, flags| {
        let (s, d) = tuple(i);
        craft::tcp_v4_data(src_mac, dst_mac, s, d, flags, (1000, 0), &payload)
    };
    let nflows = if a.proto == "syn" || a.proto == "conn" {
        1
    } else {
        a.flows
    };
    let flows: Vec<Vec<u8>> = (0..nflows)
        .map(|i| match a.proto.as_str() {
            "udp" => {
                let (s, d) = walk(i);
                craft::udp_ip(src_mac, dst_mac, s, d, &payload)
            }
            _ => segment(i, tcp::Flags::ACK),
        })
        .collect();
    let syns: Vec<Vec<u8>> = match a.proto.as_str() {
        "tcp" => (0..a.flows).map(|i| segment(i, tcp::Flags::SYN)).collect(),
        "syn" => vec![segment(0, tcp::Flags::SYN)],
        "conn" => {
            let (s, d) = tuple(0);
            vec![craft::tcp_v4(
                src_mac,
                dst_mac,
                s,
                d,
                tcp::Flags::SYN,
                CLIENT_ISN,
                0,
            )]
        }
        _ => Vec::new(),
    };
    let conn = a.proto == "conn";
    let punt_frame = craft::tcp_v4(
        src_mac,
        dst_mac,
        (Ipv4Addr::new(203, 0, 113, 254), 40179),
        (*a.punt_dst.ip(), a.punt_dst.port()),
        tcp::Flags::ACK,
        1,
        1,
    );
    // Every this many frames, one is a punt frame (0: none).
    let punt_every = a.rate.checked_div(a.punt).map_or(0, |n| n.max(1));
    let mut frame_no = 0u64;
    // tcp: SYNs still to send before the ACKs. syn: the next new flow.
    let mut syns_left = if a.proto == "tcp" {
        a.flows.saturating_mul(a.syn_passes.max(1))
    } else {
        0
    };
    let mut new_flow = 0u32;
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
    let mut replies = Burst::default();
    let mut client_rxq = tx_port.rx_queue(0);
    let mut bad_frames = 0u64;
    let mut arp_answered = 0u64;
    let hz = dpdk::tsc_hz() as f64;
    let mut warming = a.warmup > 0.0;
    let warmup_rate = a.warmup_rate.unwrap_or(a.rate);
    let mut per_packet = hz / (if warming { warmup_rate } else { a.rate }).max(1) as f64;
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
            per_packet = hz / a.rate.max(1) as f64;
            (offered, sent, received, bad, alloc_failed) = (0, 0, 0, 0, 0);
            bad_frames = 0;
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
                let (room, _) = m.room_and_len_mut();
                frame_no += 1;
                let len = if punt_every > 0 && !warming && frame_no.is_multiple_of(punt_every) {
                    room[..punt_frame.len()].copy_from_slice(&punt_frame);
                    punt_frame.len()
                } else if a.proto == "syn" || conn {
                    new_syn(room, &syns[0], new_flow, src_count, dst_ports);
                    new_flow = new_flow.wrapping_add(1);
                    syns[0].len()
                } else {
                    let f = if syns_left > 0 {
                        syns_left -= 1;
                        &syns[next as usize]
                    } else {
                        &flows[next as usize]
                    };
                    next = (next + 1) % a.flows;
                    room[..f.len()].copy_from_slice(f);
                    f.len()
                };
                m.set_len(len);
                let _ = tx.push(m);
            }
            offered += n;
            sent += txq.tx(&mut tx) as u64;
            tx.clear(); // what the queue refused is dropped: loss at the source
        }
        if conn {
            // The clients' side: SYN-ACKs, the servers' FINs, last ACKs.
            if client_rxq.rx(&mut rx, 32) > 0 {
                for i in 0..rx.len() {
                    let Some(mut m) = rx.take(i) else { continue };
                    if let Some(reply) = arp_any(m.data(), src_mac) {
                        arp_answered += u64::from(push_frame(&pool, &mut replies, &reply));
                        continue;
                    }
                    let (room, len) = m.room_and_len_mut();
                    match reflect(room, len, false) {
                        Reflect::Reply(n) => {
                            m.set_len(n);
                            let _ = replies.push(m);
                        }
                        Reflect::Completed => received += 1,
                        Reflect::Ignore => bad_frames += 1,
                    }
                }
                rx.clear();
                txq.tx(&mut replies);
                replies.clear();
            }
            // The servers' side.
            if rxq.rx(&mut rx, 32) > 0 {
                for i in 0..rx.len() {
                    let Some(mut m) = rx.take(i) else { continue };
                    if let Some(reply) = a
                        .answer_arp
                        .and_then(|ip| arp_answer(m.data(), ip, sink_mac))
                    {
                        arp_answered += u64::from(push_frame(&pool, &mut replies, &reply));
                        continue;
                    }
                    if m.data().get(12..14) == Some(&[0x08, 0x06][..]) {
                        continue; // ARP for someone else (the gateway): not ours to answer
                    }
                    let (room, len) = m.room_and_len_mut();
                    match reflect(room, len, true) {
                        Reflect::Reply(n) => {
                            m.set_len(n);
                            let _ = replies.push(m);
                        }
                        _ => bad_frames += 1,
                    }
                }
                rx.clear();
                arp_txq.as_mut().unwrap_or(&mut txq).tx(&mut replies);
                replies.clear();
            }
            continue;
        }
        if rxq.rx(&mut rx, 32) > 0 {
            for i in 0..rx.len() {
                if let Some(m) = rx.get(i) {
                    if let Some(reply) = a
                        .answer_arp
                        .and_then(|ip| arp_answer(m.data(), ip, sink_mac))
                    {
                        arp_answered += u64::from(push_frame(&pool, &mut arp_out, &reply));
                        continue;
                    }
                    if is_neighbour_traffic(m.data()) {
                        continue; // ARP/ND for someone else (the gateway): not traffic
                    }
                    received += 1;
                    // Check every 64th frame's payload marker.
                    if received % 64 == 0 {
                        let d = m.data();
                        let ok = d.len() >= payload_at + MAGIC.len()
                            && &d[payload_at..payload_at + MAGIC.len()] == MAGIC;
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
    if conn {
        // Frames neither side expected (conn mode): a broken exchange.
        bad = bad_frames;
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
