//! sluiced: the Sluice daemon. Reads the config, starts EAL and the ports,
//! runs the poll-mode workers on their lcores and the control loop on the
//! main lcore, and on SIGTERM/SIGINT stops cleanly and prints its counters.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use sluice::routing::Availability;
use sluice::rules::compile_services;
use sluice::server::Server;
use sluice::traffic::TrafficBook;
use sluice::watch::Watch;
use sluice::{metrics, report};
use sluice_core::config::eal::{check_eal, Hugepages};
use sluice_core::config::{Config, ConfigErrors, LogFormat};
use sluice_core::dpdk::{self, Eal, Mempool, Port};
use sluice_core::lb::{Carry, Services};
use sluice_core::neigh::{CacheConfig, PortIndex};
use sluice_core::pipeline::Dataplane;
use sluice_core::pipeline::{internal_sources_v4, internal_sources_v6, PROBE_PORTS};
use sluice_core::runtime::{ControlPlane, Shared, Worker};
use sluice_probe::Prober;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

mod daemon;
use daemon::Daemon;

#[derive(Parser, Debug)]
#[command(
    name = "sluiced",
    version = sluice::LONG_VERSION,
    about = "Sluice: a DPDK layer-4 load balancer and NAT gateway"
)]
struct Args {
    /// Run the daemon with this config file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "check_config",
        required_unless_present_any = ["check_config", "generate"]
    )]
    config: Option<PathBuf>,
    /// Validate FILE, print every error (object, field, reason) and exit.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// With --check-config: check the file only, not this host (its free
    /// hugepages), as on a build machine that will not run the daemon.
    #[arg(long, requires = "check_config")]
    no_host: bool,
    /// Divide every protocol timer (idle timeouts, SNAT port release) by N.
    /// For labs and tests only.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    timer_scale: u32,
    /// Print the man page or shell completions (man, bash, zsh, fish).
    #[arg(long, hide = true, value_name = "KIND", value_parser = sluice::generate::KINDS)]
    generate: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = &args.generate {
        return sluice::generate::generate(<Args as clap::CommandFactory>::command(), kind, "8");
    }
    if let Some(path) = &args.check_config {
        return check_config(path, !args.no_host);
    }
    let path = args
        .config
        .clone()
        .expect("clap requires --config without --check-config");
    let cfg = match Config::load(&path).and_then(|c| eal_checked(c, &path, true)) {
        Ok(c) => c,
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "sluiced: {} error(s) in {}; not starting",
                errs.0.len(),
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.control.log, cfg.control.log_format);
    match run(cfg, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config, unless its EAL arguments disagree with it or the host
/// lacks the hugepages EAL would need (errors with their lines).
fn eal_checked(c: Config, path: &std::path::Path, host: bool) -> Result<Config, ConfigErrors> {
    let huge = if host {
        Hugepages::of_host()
    } else {
        Hugepages {
            free: u64::MAX,
            mounted: true,
        }
    };
    let mut errors = check_eal(&c, huge);
    if errors.is_empty() {
        return Ok(c);
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    sluice_core::config::place_errors(&text, &mut errors);
    Err(ConfigErrors(errors))
}

fn check_config(path: &std::path::Path, host: bool) -> ExitCode {
    let loaded = Config::load(path)
        .and_then(|c| eal_checked(c, path, host))
        .and_then(|c| {
            let (maps, _) = Services::load_nat_maps(&c, &c.control.state_dir);
            let (snat, _) = sluice_nat::load_assignments(&c, &c.control.state_dir);
            let mut errors = Services::compile(&c, &|_, _| true, &maps)
                .err()
                .unwrap_or_default();
            if let Err(e) = sluice_nat::blocks::plan(&c, &snat) {
                errors.extend(e);
            }
            if errors.is_empty() {
                Ok(c)
            } else {
                Err(ConfigErrors(errors))
            }
        });
    match loaded {
        Ok(c) => {
            println!(
                "{}: OK ({} ports, {} frontends, {} pools, {} lb rules, {} outbound rules)",
                path.display(),
                c.ports.len(),
                c.frontends.len(),
                c.pools.len(),
                c.lb_rules.len(),
                c.outbound_rules.len()
            );
            ExitCode::SUCCESS
        }
        Err(mut errs) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            sluice_core::config::place_errors(&text, &mut errs.0);
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", path.display(), errs.0.len());
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => fmt.json().init(),
        // Colour only on a terminal: a file or the journal gets plain text.
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn run(cfg: Config, args: &Args) -> Result<()> {
    if args.timer_scale > 1 {
        warn!(
            scale = args.timer_scale,
            "--timer-scale divides every protocol timer: for labs and tests only"
        );
    }
    let services = compile_services(&cfg)?;
    // The metrics listener starts after EAL (its threads must inherit the
    // main lcore's pinning), so its address is tried here, before EAL has
    // taken hugepages and devices: an address in use fails the start now.
    drop(
        std::net::TcpListener::bind(cfg.control.metrics).with_context(|| {
            format!(
                "[control] metrics {}: cannot listen (another exporter on it?)",
                cfg.control.metrics
            )
        })?,
    );
    let eal = Eal::init(&cfg.dpdk.eal_args).context("starting DPDK")?;
    info!(version = %eal.version(), "EAL up");
    // dpdk-dumpcap can capture on the ports (docs/operations.md).
    if let Err(e) = eal.enable_capture() {
        info!("{e}: dpdk-dumpcap cannot attach");
    }
    let main = dpdk::main_lcore();
    for &w in &cfg.dpdk.workers {
        if w == main || !dpdk::lcore_enabled(w) {
            bail!("[dpdk] workers: lcore {w} is not a worker lcore of eal_args' core list (main lcore is {main})");
        }
    }
    // After EAL: these threads inherit the main lcore's pinning, so they
    // share control's core and never a worker's.
    let server = Server::start(&cfg.control.socket)?;
    metrics::install(cfg.control.metrics)?;
    let pool = Arc::new(
        Mempool::new("sluice_mbufs", cfg.dpdk.mbufs, -1).context("creating the mbuf pool")?,
    );
    let nworkers = cfg.dpdk.workers.len() as u16;
    let mut ports = Vec::new();
    for p in &cfg.ports {
        // One TX queue per worker, and one for control where the device
        // has it (else control sends through worker 0).
        let port = Port::start(&p.device, p.rx_queues, nworkers, 1, p.mtu, &pool)
            .with_context(|| format!("port \"{}\"", p.name))?;
        info!(port = %p.name, device = %port.name(), mac = %port.mac(), addresses = ?p.addresses, "port started");
        if port.rx_ip_checksum() {
            info!(port = %p.name, device = %port.name(), "RX IPv4 checksum offload on: the data path trusts the port's verdict");
        }
        ports.push(port);
    }
    let macs: Vec<_> = ports.iter().map(Port::mac).collect();
    let opened = sluice::adopt::open(&cfg, cfg.dpdk.workers.len())?;
    let sync = sluice::cluster::make(&cfg, &services);
    let shared = Shared::with_tables(
        Dataplane::new(&cfg, &macs),
        services,
        opened.tables,
        cfg.dpdk.workers.len(),
        sync,
    );
    // Control before the workers: adopted flows move to this config's ids
    // before any packet can use them.
    let mut control = ControlPlane::new(
        shared.clone(),
        pool.clone(),
        CacheConfig::default(),
        args.timer_scale,
    );
    if let Some(ids) = &opened.identities {
        let carry = Carry::from_identities(ids, &shared.services.load());
        control.adopt(&carry, opened.adopted, opened.cut_short);
        let c = control.counters();
        info!(
            adopted = c.get(sluice_core::runtime::ControlStat::FlowsAdopted),
            cut_short = c.get(sluice_core::runtime::ControlStat::FlowsCutShort),
            remapped = c.get(sluice_core::runtime::ControlStat::FlowsRemapped),
            ended = c.get(sluice_core::runtime::ControlStat::FlowsEndedByRestart),
            "adopted flows carried over to this config"
        );
    }
    sluice::adopt::save_identities(&cfg, &shared.services.load());
    let taps = sluice::kernel::start(&cfg, &macs, &pool, &mut control)?;

    let mut workers: Vec<Worker> = (0..cfg.dpdk.workers.len())
        .map(|i| Worker {
            index: i,
            rx: Vec::new(),
            tx: ports.iter().map(|p| p.tx_queue(i as u16)).collect(),
            burst: usize::from(cfg.dpdk.burst),
            pool: Arc::clone(&pool),
            idle_sleep_us: cfg.dpdk.idle_sleep_us,
        })
        .collect();
    let mut k = 0;
    for (pi, p) in PortIndex::all(cfg.ports.len()).zip(&cfg.ports) {
        for q in 0..p.rx_queues {
            let w = k % workers.len();
            workers[w].rx.push((pi, ports[pi.index()].rx_queue(q)));
            k += 1;
        }
    }
    for (w, &lcore) in workers.into_iter().zip(&cfg.dpdk.workers) {
        let queues: Vec<String> =
            w.rx.iter()
                .map(|(p, _)| cfg.ports[usize::from(*p)].name.clone())
                .collect();
        info!(worker = w.index, lcore, rx = ?queues, "launching worker");
        let s = shared.clone();
        dpdk::launch(lcore, move || w.run(s))?;
    }

    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;

    for (pi, port) in PortIndex::all(ports.len()).zip(&ports) {
        if port.tx_queue_count() > nworkers {
            control.own_tx(pi, port.tx_queue(nworkers));
            info!(port = %cfg.ports[pi.index()].name, queue = nworkers, "control sends on its own TX queue");
        }
    }
    for (pi, p) in PortIndex::all(cfg.ports.len()).zip(&cfg.ports) {
        for &gw in &p.gateways {
            control.resolve(pi, gw);
        }
    }
    sluice::links::wait_for_links(&ports, &cfg);
    control.announce_addresses();
    // A cluster member takes its peers' flows before it reports ready.
    sluice::cluster::wait_for_bulk(&mut control, &shared, |c| {
        c.poll();
    });

    let clock = Instant::now();
    let sources: Vec<(IpAddr, u8)> = internal_sources_v4(&cfg)
        .into_iter()
        .map(|(a, l)| (IpAddr::V4(a), l))
        .chain(
            internal_sources_v6(&cfg)
                .into_iter()
                .map(|(a, l)| (IpAddr::V6(a), l)),
        )
        .collect();
    let prober = Prober::new(&cfg, &sources, seed(), 0);
    info!(
        probed = prober.status().len(),
        "health probes from {sources:?}, local ports {}-{}",
        PROBE_PORTS.start(),
        PROBE_PORTS.end()
    );
    let path = args.config.clone().expect("run() has --config");
    let watch = match Watch::start(&path) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(
                "not watching {} for changes ({e}); SIGHUP and sluicectl reload still work",
                path.display()
            );
            None
        }
    };
    let cfg_for_avail = cfg.clone();
    let mut book = TrafficBook::default();
    book.remap(&shared, &shared.services.load(), &cfg);
    let shared_epochs = shared.flows.epochs();
    let mut d = Daemon {
        last_text: std::fs::read(&path).unwrap_or_default(),
        path,
        file_cfg: cfg.clone(),
        cfg,
        drained: BTreeSet::new(),
        macs,
        shared,
        control,
        prober,
        ports,
        taps,
        clock,
        book,
        transitions: Default::default(),
        // WATCHDOG_USEC set for this process: systemd's WatchdogSec.
        watchdog: sd_notify::watchdog_enabled().map(|_| shared_epochs),
        avail: Availability::new(&cfg_for_avail),
        metrics_at: Instant::now(),
    };
    info!(
        workers = d.cfg.dpdk.workers.len(),
        socket = %d.cfg.control.socket.display(),
        metrics = %d.cfg.control.metrics,
        "sluiced ready"
    );

    while !term.load(Ordering::Relaxed) {
        d.turn(&server, watch.as_ref(), &hup);
    }
    drain(&mut d, &server, watch.as_ref(), &hup);

    info!("stopping");
    drop(server);
    let shared = d.shared.clone();
    shared.stop.store(true, Ordering::Relaxed);
    for &lcore in &d.cfg.dpdk.workers {
        let rc = dpdk::wait(lcore);
        if rc != 0 {
            warn!(lcore, rc, "worker returned an error");
        }
    }
    d.control.poll();
    // Frames still queued hold mbufs of the pool EAL is about to free.
    while shared.to_prober.pop().is_some() {}
    while shared.from_control.pop().is_some() {}
    while shared.to_control.pop().is_some() {}
    while shared.to_kernel.pop().is_some() {}
    report::print(&d.cfg, &shared, &d.control.counters(), &d.prober, &d.ports);
    let Daemon {
        control,
        ports,
        taps,
        avail: d_avail,
        ..
    } = d;
    d_avail.finish();
    drop(control);
    drop(taps);
    drop(ports);
    eal.cleanup();
    Ok(())
}

/// At a stop with a routing daemon: maintenance on (every announcement
/// withdrawn), then the control loop runs on while flows remain, for
/// `[routing] drain_time` at most. In a cluster the peers hold every flow,
/// so the drain also ends once nothing has been forwarded here for a
/// second: the routers send the traffic elsewhere. A second SIGTERM does
/// not cut it short: `kill -9` does.
fn drain(d: &mut Daemon, server: &Server, watch: Option<&Watch>, hup: &AtomicBool) {
    let limit = d.avail.drain_time();
    if limit.is_zero() {
        return;
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    d.avail.maintenance = true;
    d.avail.changed();
    let start = Instant::now();
    let (mut said, mut checked) = (Instant::now(), Instant::now());
    let cluster = d.cfg.cluster.is_some();
    let forwarded = |d: &Daemon| -> u64 {
        d.shared
            .counters
            .iter()
            .map(|c| c.read().stat(sluice_core::pipeline::Stat::Forwarded))
            .sum()
    };
    let (mut last, mut moved) = (forwarded(d), Instant::now());
    info!(flows = d.flows(), limit = ?limit, "draining: announcements withdrawn");
    while d.flows() > 0 && start.elapsed() < limit {
        d.turn(server, watch, hup);
        if checked.elapsed() >= Duration::from_millis(100) {
            checked = Instant::now();
            let f = forwarded(d);
            if f != last {
                (last, moved) = (f, Instant::now());
            } else if cluster && moved.elapsed() >= Duration::from_secs(1) {
                info!("nothing forwarded for 1 s: the peers carry the flows");
                break;
            }
        }
        if said.elapsed() >= Duration::from_secs(1) {
            said = Instant::now();
            info!(flows = d.flows(), "draining");
        }
    }
    info!(flows = d.flows(), after = ?start.elapsed(), "drained");
}

/// Varies TCP sequence numbers and probe ports between runs.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()) << 32
}

/// Probe replies per round handed from the workers' ring to the prober.
pub(crate) const PROBE_DRAIN: usize = 1024;
