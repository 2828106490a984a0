/* sock_diag.h - the cookie of the socket at the other end of a local TCP
 * connection.
 *
 * The data plane keeps a redirected connection's original destination under
 * the agent socket's cookie. The egress proxy holds only the accepted end;
 * the kernel's sock_diag interface looks the agent's end up by its 4-tuple
 * (in the caller's network namespace) and reports its cookie, the same value
 * BPF's bpf_get_socket_cookie() saw.
 */
#ifndef KARS_SOCK_DIAG_H
#define KARS_SOCK_DIAG_H

#include <stdint.h>

#include "err.h"

struct kars_sock_peer {
	uint64_t cookie; /* the peer socket's cookie */
	uint32_t uid;	 /* the UID that owns the peer socket (its creator's) */
};

/* fd: an accepted TCP socket whose peer is on this host. For a loopback TCP
 * connection this is what SO_PEERCRED is for a unix socket: who is calling. */
int kars_sock_peer_lookup(int fd, struct kars_sock_peer *peer, struct kars_err *err);
int kars_sock_peer_cookie(int fd, uint64_t *cookie, struct kars_err *err);

#endif
