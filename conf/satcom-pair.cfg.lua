-- Ship side of a SATCOM pair: clients on the ship's LAN connect here; the
-- shore server is the Peer.  The shore's config mirrors this one.
data_dir = "/var/lib/skywave"
modules = { "c2s", "im", "carbons", "server", "link_tcp", "filter",
            "presence_cache" }   -- contacts at the shore answered here

link_tcp_interfaces = { "0.0.0.0" }
link_tcp_port = 5270
-- TCP Fast Open is on (link_tcp_fastopen); for the shore's new connections
-- to ride in their SYN after a restart here, this host needs
--   sysctl -w net.ipv4.tcp_fastopen=3
-- and over a path slower than a second (Iridium, HF), so that the kernel
-- does not resend each SYN every second (Linux 6.5+):
--   sysctl -w net.ipv4.tcp_syn_linear_timeouts=0

VirtualHost "ship.example"

Peer "shore" {
    peer_domains = { "shore.example", "muc.shore.example" },
    link_tcp_address = "192.0.2.10",
    link_tcp_peer_port = 5270,
    peer_initiate = "both",
    peer_keepalive = "120s",        -- fewer bytes on an idle satellite link
    peer_reconnect_max = "20s",
    -- over half-duplex HF, so that neither kernel resends its SYN or
    -- SYN-ACK before a turnaround can answer it (Linux, skywaved in a
    -- cgroup of its own as systemd runs it, CAP_BPF and CAP_NET_ADMIN;
    -- doc/peer-links.md, "The handshake's timeout"):
    -- link_tcp_syn_timeout = "10s",
    -- without a modem that reports its link to the host, an attempt every
    -- 300 ms finds the link within ~1.25x the floor after an outage or a
    -- restart (1.6-1.8x automatic), for ~2.5 % of a 64 kbit/s link while
    -- it is up and the shore silent; not for Iridium-class links
    -- (doc/peer-links.md, "The probing cadence")
    -- peer_probe_interval = "300ms",
    -- what crosses (doc/policies.md): the standard "lean" policy drops
    -- chat states, folds presence to show/status/priority, strips
    -- formatting and receipts and answers most IQs here; try it first
    -- with  skywaved --policy-test lean < some-stanzas.xml
    filter_outbound = { "lean" },
}
