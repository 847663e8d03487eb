-- The configuration tools/quickstart runs: everything under ./var of the
-- source tree (relative paths are relative to this file's directory).
log_level = "info"
data_dir = "../var"
modules = { "c2s", "im", "carbons", "server" }

VirtualHost "localhost"

-- Group chat rooms: room@conference.localhost
Component "conference.localhost" "muc"
