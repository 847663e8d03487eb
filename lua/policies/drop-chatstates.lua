-- Chat states (XEP-0085) stay off the link.  A standalone notification
-- ("typing", "paused": a chat state with no body and nothing else that
-- matters) is dropped; a message with a body keeps its body and loses
-- only the chat state element.  Same as the rule { drop_chat_states =
-- true } (see lean.lua), written out as a function.
local CS = "http://jabber.org/protocol/chatstates"

-- what a standalone notification carries besides its chat state
local minor = {
    ["urn:xmpp:hints"] = true,          -- XEP-0334 processing hints
    ["urn:xmpp:sid:0"] = true,          -- XEP-0359 ids
    [CS] = true,
}

local function standalone(st)
    for _, c in ipairs(st:children()) do
        if not minor[c.ns] and c.name ~= "thread" then
            return false
        end
    end
    return true
end

local policy = { name = "drop-chatstates" }

function policy.outbound(st, link)
    if st:kind() == "message" and st:child(nil, CS) then
        if standalone(st) then
            return "drop"
        end
        st:strip(nil, CS)
    end
    return "pass"
end

return policy
