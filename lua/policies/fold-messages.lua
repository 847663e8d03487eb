-- Message folding, strip-list mode: what the other end can live without
-- is taken out, the rest (body, thread, ids...) crosses unchanged.
--   XHTML-IM (XEP-0071): the body carries the same text, unformatted;
--   delivery receipts (XEP-0184): the link's own acks already say that
--     the peer server has the message;
--   security labels (XEP-0258): only where both ends do not use them.
-- Allow-list mode (keep only what is listed) is the rule
--   { message_keep = { "thread", "{urn:xmpp:delay}" } }
-- which always keeps the body and, in an error, the error.
local policy = { name = "fold-messages" }

local strip = {
    "{http://jabber.org/protocol/xhtml-im}html",
    "{urn:xmpp:receipts}",
    "{urn:xmpp:sec-label:0}securitylabel",
}

function policy.outbound(st, link)
    if st:kind() == "message" then
        for _, s in ipairs(strip) do
            st:strip(s)
        end
    end
    return "pass"
end

return policy
