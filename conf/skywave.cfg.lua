-- Skywave: a single server for one LAN.
-- Check it with:  skywaved -t -c skywave.cfg.lua
-- Every option, with its type, default and scope:  skywaved --list-options

log_level = "info"              -- error, warn, info, debug (reloadable)
data_dir = "/var/lib/skywave"   -- database, generated certificates

-- Storage backend: "sqlite" (the embedded default) loads mod_storage_sqlite.
storage = "sqlite"

-- Modules to load; each loads what it requires first.
modules = {
    "c2s",                      -- clients: TLS, SASL, binding, XEP-0198
    "im",                       -- rosters, presence, messages, offline (RFC 6121)
    "carbons",                  -- XEP-0280 message carbons
    "server",                   -- disco, ping, version
}

-- Stream limits (RFC 6120 §13.12).
max_stanza_size = "256k"

-- One block per domain this server hosts.  Options set inside apply to
-- that host only (where the option allows it).
VirtualHost "example.net" {
}

-- A group chat service (XEP-0045); the muc module loads by itself.
Component "conference.example.net" "muc" {
}
