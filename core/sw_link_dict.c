/*
 * The default preset DEFLATE dictionary for peer links ("peer_dictionary
 * = 'default'").  A new connection starts with an empty compression
 * window, so the first stanzas after every reconnect would compress
 * poorly; with this text as history they compress like the hundredth.
 * It is representative server-to-server traffic as Skywave serializes it
 * (jabber:server, single quotes), the most common strings last, where
 * DEFLATE's distances are shortest.  Both ends must use the same text:
 * zlib's FDICT check (Adler-32) catches a mismatch.  Changing it is a
 * wire-format change: bump its name.
 */
#include "config.h"

#include <skywave/sw_link.h>

const char sw_link_default_dict_name[] = "skywave-link-dict-1";

const char sw_link_default_dict[] =
    "<iq type='get' id='disco1' to='' from=''><query xmlns='http://jabber.org"
    "/protocol/disco#info'/></iq><iq type='result' id='disco1'><query xmlns="
    "'http://jabber.org/protocol/disco#info'><identity category='server' "
    "type='im' name='Skywave'/><feature var='urn:xmpp:ping'/><feature var="
    "'jabber:iq:version'/><feature var='http://jabber.org/protocol/disco#"
    "items'/></query></iq><iq type='get' id='v1'><query xmlns='jabber:iq:"
    "version'/></iq><iq type='result' id='v1'><query xmlns='jabber:iq:"
    "version'><name>Skywave</name><version>0.1.0</version></query></iq>"
    "<iq type='error' id=''><error type='cancel'><service-unavailable xmlns="
    "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq><message type="
    "'error' id=''><error type='cancel'><remote-server-not-found xmlns='urn:"
    "ietf:params:xml:ns:xmpp-stanzas'/></error></message><presence type="
    "'subscribe' to='' from=''/><presence type='subscribed' to='' from=''/>"
    "<presence type='unsubscribe'/><presence type='probe' to='' from=''/>"
    "<presence type='unavailable' to='' from=''/><x xmlns='http://jabber.org"
    "/protocol/muc#user'><item affiliation='member' role='participant'/>"
    "</x><x xmlns='http://jabber.org/protocol/muc'/><message type='groupchat'"
    " to='' from=''><body></body><subject></subject></message><x xmlns="
    "'vcard-temp:x:update'><photo/></x><x xmlns='jabber:x:data' type='submit"
    "'><field var='FORM_TYPE' type='hidden'><value></value></field></x>"
    "<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking fgcolor="
    "'black' bgcolor='red'>SECRET</displaymarking><label><esssecuritylabel "
    "xmlns='urn:xmpp:sec-label:ess:0'></esssecuritylabel></label>"
    "</securitylabel><delay xmlns='urn:xmpp:delay' from='' stamp='2026-01-"
    "01T00:00:00Z'/><iq type='get' id='ping1' to='' from=''><ping xmlns='urn"
    ":xmpp:ping'/></iq><iq type='result' id='ping1' to='' from=''/>"
    "<presence to='' from=''><show>away</show><status></status><priority>0"
    "</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
    "node='http://' ver='='/></presence><presence to='' from=''><show>dnd"
    "</show><show>xa</show><show>chat</show><c xmlns='http://jabber.org/"
    "protocol/caps' hash='sha-1' node='' ver=''/></presence>"
    "<message to='' type='chat' id='' from=''><composing xmlns='http://"
    "jabber.org/protocol/chatstates'/></message><message to='' type='chat' "
    "id='' from=''><paused xmlns='http://jabber.org/protocol/chatstates'/>"
    "</message><message to='' type='chat' id='' from=''><received xmlns="
    "'urn:xmpp:receipts' id=''/></message><message to='' type='chat' id='' "
    "from=''><body>The </body><active xmlns='http://jabber.org/protocol/"
    "chatstates'/><request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:"
    "xmpp:chat-markers:0'/><origin-id xmlns='urn:xmpp:sid:0' id=''/>"
    "<stanza-id xmlns='urn:xmpp:sid:0' id='' by=''/></message><a xmlns='urn"
    ":skywave:link:0' h=''/><link xmlns='urn:skywave:link:0' seq='' ack=''/>"
    "<message to='' type='chat' id='' from=''><body></body><active xmlns="
    "'http://jabber.org/protocol/chatstates'/></message>";

const size_t sw_link_default_dict_len = sizeof(sw_link_default_dict) - 1;
