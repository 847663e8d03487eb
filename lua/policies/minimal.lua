-- A minimal link (HF, 75-2400 bit/s): of a message only its body (and,
-- in an error, its error), thread, ids (XEP-0359: Federated MUC finds
-- what a node lacks by them), delay stamps and room payloads; presence
-- reduced to available/unavailable (MUC and FMUC payloads kept, so rooms
-- still work); IQ requests only for ping.
return {
    name = "minimal",
    outbound = {
        drop_chat_states = true,
        presence_fold = "available",
        message_keep = {
            "thread",
            "{urn:xmpp:sid:0}",
            "{urn:xmpp:delay}",
            "{http://jabber.org/protocol/muc#user}",
            "{http://isode.com/protocol/fmuc}",
        },
        iq_allow = { "urn:xmpp:ping" },
    },
}
