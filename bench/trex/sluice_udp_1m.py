"""TRex stateless profile for sluiced on real hardware (BENCHMARKS.md,
"Scaling"): 64-byte UDP to the frontend 203.0.113.10:53 of
conf/memif-bench.toml's rules, from 1M flows (16 source addresses x 62,500
source ports). Load it from trex-console:

    start -f bench/trex/sluice_udp_1m.py -m 10mpps --port 0

and count what arrives on the port facing the backends (TRex port 1, which
must answer ARP for 10.0.0.11: `service`, `arp`, or a static entry).
Not run on the project's CI machine, which has no NIC and no TRex.
"""
from trex_stl_lib.api import (STLPktBuilder, STLProfile, STLScVmRaw, STLStream, STLTXCont,
                              STLVmFlowVar, STLVmFixIpv4, STLVmWrFlowVar)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether


class SluiceUdp1M:
    def get_streams(self, direction=0, **kwargs):
        base = Ether() / IP(src="203.0.113.100", dst="203.0.113.10") / UDP(sport=1024, dport=53)
        pad = max(0, 60 - len(base)) * b"x"
        vm = STLScVmRaw([
            STLVmFlowVar(name="src", min_value="203.0.113.100", max_value="203.0.113.115",
                         size=4, op="inc"),
            STLVmFlowVar(name="sport", min_value=1024, max_value=1024 + 62499, size=2, op="inc"),
            STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src"),
            STLVmWrFlowVar(fv_name="sport", pkt_offset="UDP.sport"),
            STLVmFixIpv4(offset="IP"),
        ], cache_size=255)
        return [STLStream(packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont())]


def register():
    return SluiceUdp1M()
