/*
 * mod_c2s's events, for the modules that add to client streams.
 * Installed with the SDK; mod_c2s owns it.
 */
#ifndef SKYWAVE_MOD_C2S_API_H
#define SKYWAVE_MOD_C2S_API_H

/*
 * "c2s/features": building the stream features a client sees after
 * authentication (data: sw_xml_t * of <stream:features/>), so modules
 * advertise what they add (roster versioning, pre-approval).
 */
#define SW_C2S_EV_FEATURES "c2s/features"

#endif
