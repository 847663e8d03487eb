-- Message-only operation: no presence crosses the link (nor subscription
-- requests: rosters across it are managed out of band).  Note that
-- group chat joins are presence: a link that carries rooms (FMUC) needs
-- presence, so use fold-presence.lua there instead.
return {
    name = "message-only",
    outbound = { drop_presence = true },
}
