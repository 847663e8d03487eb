-- Presence folding: only show, status and priority cross (and what MUC
-- and Federated MUC need: the muc, muc#user and fmuc payloads; the
-- presence cache's reset; and an error's error).  Capabilities (XEP-0115), avatar hashes (XEP-0153),
-- idle times (XEP-0319), nicknames (XEP-0172) and the rest stay here.
-- presence_fold = "available" would keep only available/unavailable.
return {
    name = "fold-presence",
    outbound = { presence_fold = "show" },
}
