/* tls_sni.h - the server name of a TLS ClientHello, for the egress proxy's
 * transparent path.
 *
 * A connection the data plane redirected to the proxy starts with the
 * agent's ClientHello; its server_name extension is the only name the proxy
 * has to decide on. The parser is strict because the bytes are the agent's:
 * every length must agree with the one around it, an extension may appear
 * once, the SNI list must hold exactly one host_name, and a ClientHello that
 * carries Encrypted ClientHello (or the older ESNI drafts) is refused, since
 * its real name is hidden from the proxy. A ClientHello split over several
 * TLS records, or over several reads, is reassembled: the parser says how
 * many more bytes it needs.
 */
#ifndef KARS_TLS_SNI_H
#define KARS_TLS_SNI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The longest ClientHello the proxy reads (handshake header included): a
 * post-quantum key share is ~1.3 KiB, so this leaves room for any real one. */
#define KARS_TLS_HELLO_MAX 16384
/* An SNI host name: 253 characters and a NUL. */
#define KARS_TLS_SNI_BUF 254

enum kars_sni_result {
	KARS_SNI_OK = 0, /* sni holds the host name */
	KARS_SNI_MORE,	 /* *need more bytes are required (the buffer is a prefix) */
	KARS_SNI_BAD,	 /* not a well-formed ClientHello; err says where */
	KARS_SNI_NONE,	 /* a ClientHello without a host_name */
	KARS_SNI_ECH,	 /* a ClientHello with encrypted_client_hello or ESNI */
};

/* Parses the first len bytes a client sent. On KARS_SNI_OK sni holds the
 * name exactly as sent (not yet normalised, no NUL inside); on KARS_SNI_MORE
 * *need is the least total length worth parsing again. err names the byte
 * offset of what is wrong for every result but OK and MORE. */
enum kars_sni_result kars_tls_sni_parse(const uint8_t *buf, size_t len, char sni[KARS_TLS_SNI_BUF],
					size_t *need, struct kars_err *err);

const char *kars_sni_result_str(enum kars_sni_result r);

#endif
