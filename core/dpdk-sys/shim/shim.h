/* C shim over DPDK's static-inline functions and macros, which bindgen cannot
 * bind. Each wrapper is a one-line forward; keep them that way so the cost is
 * one call (LTO across languages is not assumed). */
#ifndef SLUICE_SHIM_H
#define SLUICE_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_version.h>
#include <rte_pdump.h>

uint16_t shim_rte_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_rte_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp);
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void shim_rte_pktmbuf_free(struct rte_mbuf *m);
void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);

/* The offload flag macros (RTE_BIT64 expressions bindgen cannot evaluate),
 * for a test that checks the Rust constants against them: the mbuf's RX IP
 * checksum mask and good flag, and ethdev's RX IPv4 checksum offload. */
void shim_offload_flags(uint64_t out[3]);

uint8_t *shim_mbuf_data(struct rte_mbuf *m);
uint16_t shim_mbuf_data_len(const struct rte_mbuf *m);
uint32_t shim_mbuf_pkt_len(const struct rte_mbuf *m);
uint16_t shim_mbuf_nb_segs(const struct rte_mbuf *m);
uint16_t shim_mbuf_tailroom(const struct rte_mbuf *m);
/* Sets the length of a single-segment mbuf; returns -1 if it does not fit. */
int shim_mbuf_set_len(struct rte_mbuf *m, uint16_t len);

unsigned shim_rte_lcore_id(void);
int shim_rte_errno(void);
uint64_t shim_rte_rdtsc(void);
uint64_t shim_rte_get_tsc_hz(void);

unsigned shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned shim_rte_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);

const char *shim_rte_version(void);

#endif
