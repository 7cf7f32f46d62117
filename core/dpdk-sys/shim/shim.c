#include "shim.h"

uint16_t shim_rte_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t shim_rte_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void shim_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n) { rte_pktmbuf_free_bulk(mbufs, n); }

void shim_offload_flags(uint64_t out[3])
{
	out[0] = RTE_MBUF_F_RX_IP_CKSUM_MASK;
	out[1] = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	out[2] = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
}

uint8_t *shim_mbuf_data(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
uint16_t shim_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }
uint32_t shim_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
uint16_t shim_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t shim_mbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
int shim_mbuf_set_len(struct rte_mbuf *m, uint16_t len)
{
	if (m->nb_segs != 1 || (uint32_t)m->data_off + len > m->buf_len)
		return -1;
	m->data_len = len;
	m->pkt_len = len;
	return 0;
}

unsigned shim_rte_lcore_id(void) { return rte_lcore_id(); }
int shim_rte_errno(void) { return rte_errno; }
uint64_t shim_rte_rdtsc(void) { return rte_rdtsc(); }
uint64_t shim_rte_get_tsc_hz(void) { return rte_get_tsc_hz(); }

unsigned shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{ return rte_ring_enqueue_burst(r, objs, n, NULL); }
unsigned shim_rte_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{ return rte_ring_dequeue_burst(r, objs, n, NULL); }

const char *shim_rte_version(void) { return rte_version(); }
