//! Finds the system DPDK with pkg-config, compiles the C shim and generates
//! bindings. A missing DPDK fails the build with one line saying what to
//! install, instead of a wall of compiler errors.

use std::env;
use std::path::PathBuf;

const DEBIAN_PACKAGES: &str = "dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config";
/// Driver archives whole-archived by the `static` feature unless
/// SLUICE_DPDK_DRIVERS names others (comma list of DPDK driver names).
const DEFAULT_STATIC_DRIVERS: &str =
    "bus_vdev,bus_pci,mempool_ring,net_af_packet,net_pcap,net_memif,net_tap,net_null,net_ring";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=SLUICE_DPDK_DRIVERS");
    let statik = env::var_os("CARGO_FEATURE_STATIC").is_some();

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .statik(statik)
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(_) => {
            eprintln!(
                "error: DPDK >= 22.11 not found by pkg-config (libdpdk.pc); install it with: apt-get install {DEBIAN_PACKAGES}"
            );
            std::process::exit(1);
        }
    };

    let mut clang_args: Vec<String> = Vec::new();
    for p in &lib.include_paths {
        clang_args.push(format!("-I{}", p.display()));
    }
    // -include rte_config.h and -march come through as plain cflags.
    let cflags = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut words = cflags.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(h) = words.next() {
                clang_args.push("-include".into());
                clang_args.push(h.into());
            }
        } else if w.starts_with("-march") || w.starts_with("-m") && !w.starts_with("-mrtm") {
            clang_args.push(w.into());
        }
    }

    let mut build = cc::Build::new();
    build.file("shim/shim.c").opt_level(3).warnings(false);
    for a in &clang_args {
        build.flag(a);
    }
    build.compile("sluice_shim");

    emit_link(&lib, statik);

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&clang_args)
        .allowlist_function("rte_eal_.*|rte_eth_.*|rte_pktmbuf_pool_create|rte_mempool_.*|rte_lcore_.*|rte_socket_id|rte_get_main_lcore|rte_strerror|rte_ring_create|rte_ring_free|rte_exit|rte_pdump_init|rte_pdump_uninit|shim_.*")
        .allowlist_type("rte_eth_.*|rte_mbuf|rte_mempool|rte_ring|rte_ether_addr|lcore_function_t")
        .allowlist_var("RTE_ETH_.*|RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RING_F_.*|SOCKET_ID_ANY|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_ETHER_ADDR_LEN")
        // Packed structs bindgen cannot lay out; nothing here reads them.
        .opaque_type("rte_arp_hdr|rte_arp_ipv4|rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            eprintln!("error: bindgen failed on the DPDK headers ({e}); install: apt-get install {DEBIAN_PACKAGES}");
            std::process::exit(1);
        });
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("write bindings");
}

fn emit_link(lib: &pkg_config::Library, statik: bool) {
    for p in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", p.display());
    }
    if !statik {
        // The vdev bus is loaded as a plugin by default, but `--vdev` parsing
        // happens before plugins load; linking it directly makes it always there.
        println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");
        for l in &lib.libs {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
        return;
    }
    // Static: parse pkg-config's own --static list, in its order. Drivers
    // register from constructors nothing references, so the ones named are
    // whole-archived; other DPDK archives link only what is used; driver
    // archives not named are left out.
    let drivers = env::var("SLUICE_DPDK_DRIVERS").unwrap_or_else(|_| DEFAULT_STATIC_DRIVERS.into());
    let drivers: Vec<String> = drivers
        .split(',')
        .map(|d| format!("rte_{}", d.trim()))
        .collect();
    let is_driver_kind = |n: &str| {
        [
            "rte_net_",
            "rte_bus_",
            "rte_mempool_",
            "rte_common_",
            "rte_dma_",
            "rte_crypto_",
            "rte_event_",
            "rte_baseband_",
            "rte_raw_",
            "rte_compress_",
            "rte_regex_",
            "rte_vdpa_",
            "rte_gpu_",
        ]
        .iter()
        .any(|p| n.starts_with(p))
    };
    let out = std::process::Command::new("pkg-config")
        .args(["--static", "--libs", "libdpdk"])
        .output()
        .expect("pkg-config");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut seen = std::collections::HashSet::new();
    for word in text.split_whitespace() {
        let name = if let Some(a) = word
            .strip_prefix("-l:lib")
            .and_then(|w| w.strip_suffix(".a"))
        {
            a.to_string()
        } else if let Some(l) = word.strip_prefix("-l") {
            l.to_string()
        } else if word == "-pthread" {
            "pthread".to_string()
        } else {
            continue;
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        if drivers.contains(&name) {
            println!("cargo:rustc-link-lib=static:-bundle,+whole-archive={name}");
        } else if name.starts_with("rte_") && !is_driver_kind(&name) {
            println!("cargo:rustc-link-lib=static:-bundle={name}");
        } else if !name.starts_with("rte_") {
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }
    for d in &drivers {
        if !seen.contains(d) {
            eprintln!(
                "error: SLUICE_DPDK_DRIVERS names {d}, which the installed DPDK does not provide"
            );
            std::process::exit(1);
        }
    }
}
