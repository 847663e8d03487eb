-- A lean link (Iridium class, 2400 bit/s): chat states off, presence
-- reduced to show/status/priority, formatting and receipts stripped,
-- IQ requests only for ping, version, disco#info and room admin.  The
-- declarative form: each key a rule; an unknown key is an error.
return {
    name = "lean",
    on_error = "pass",
    outbound = {
        drop_chat_states = true,
        presence_fold = "show",
        message_strip = {
            "{http://jabber.org/protocol/xhtml-im}html",
            "{urn:xmpp:receipts}",
        },
        iq_allow = {
            "urn:xmpp:ping",
            "jabber:iq:version",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/muc#admin",
            "http://jabber.org/protocol/muc#owner",
        },
    },
}
