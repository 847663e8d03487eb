-- IQ requests cross the link only for the payload namespaces listed;
-- any other request is answered here, at once, with
-- <service-unavailable/> (RFC 6120 §8.3.3.19), as the peer would for a
-- service it does not offer: the sender is never left waiting.  Results
-- and errors always pass (they answer requests that did cross).
local allowed = {
    ["urn:xmpp:ping"] = true,                       -- XEP-0199
    ["jabber:iq:version"] = true,                   -- XEP-0092
    ["http://jabber.org/protocol/disco#info"] = true,   -- XEP-0030
    ["http://jabber.org/protocol/muc#admin"] = true,    -- XEP-0045
    ["http://jabber.org/protocol/muc#owner"] = true,
}

local policy = { name = "iq-allow" }

function policy.outbound(st, link)
    if st:kind() == "iq" then
        local t = st:type()
        if (t == "get" or t == "set") and not allowed[st:payload_ns() or ""] then
            return "bounce", "service-unavailable"
        end
    end
    return "pass"
end

return policy
