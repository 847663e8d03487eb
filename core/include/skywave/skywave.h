/* Skywave public SDK: everything a module or transport plugin uses. */
#ifndef SKYWAVE_H
#define SKYWAVE_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>
#include <skywave/sw_buf.h>
#include <skywave/sw_log.h>
#include <skywave/sw_xml.h>
#include <skywave/sw_xmlstream.h>
#include <skywave/sw_jid.h>
#include <skywave/sw_stanza.h>
#include <skywave/sw_hook.h>
#include <skywave/sw_filter.h>
#include <skywave/sw_router.h>
#include <skywave/sw_config.h>
#include <skywave/sw_module.h>
#include <skywave/sw_storage.h>
#include <skywave/sw_conn.h>
#include <skywave/sw_hash.h>
#include <skywave/sw_session.h>
#include <skywave/sw_iq.h>
#include <skywave/sw_link.h>
#include <skywave/sw_policy.h>
#include <skywave/sw_server.h>

#endif
