/* local_seccomp.h - kars-strict, the seccomp profile of a sandbox's agent.
 *
 * One C table is the profile: kars_seccomp_load() installs it with
 * libseccomp in the calling process, kars_seccomp_json() renders the same
 * table as the OCI/Docker profile deploy/seccomp/kars-strict.json (a unit
 * test fails when the checked-in file differs).
 *
 * Default action EPERM. The allow list and the explicit EPERM list are the
 * original's kars-strict set; on top of it, argument filters:
 *  - socket(): only AF_UNIX, AF_INET and AF_INET6 of type STREAM, DGRAM or
 *    SEQPACKET, plus AF_NETLINK of protocol NETLINK_ROUTE (reading routes and
 *    addresses, which glibc's getaddrinfo and getifaddrs use; changing them
 *    needs CAP_NET_ADMIN, which the agent has not). Everything else, AF_PACKET,
 *    SOCK_RAW, other netlink families, AF_VSOCK, fails with EPERM.
 *  - clone(): any CLONE_NEW* flag fails with EPERM; clone3() fails with ENOSYS
 *    (its flags are in memory, out of a filter's reach), so libc falls back
 *    to clone().
 */
#ifndef KARS_LOCAL_SECCOMP_H
#define KARS_LOCAL_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

#include "err.h"

enum kars_seccomp_action {
	KARS_SC_ALLOW,
	KARS_SC_DENY, /* explicit EPERM, listed for the reader and the JSON */
};

struct kars_seccomp_entry {
	const char *name;
	enum kars_seccomp_action action;
};

/* The table, in order: allowed then explicitly denied system calls. */
extern const struct kars_seccomp_entry kars_seccomp_table[];
extern const size_t kars_seccomp_table_len;

size_t kars_seccomp_count(enum kars_seccomp_action action);
/* kars-strict as a BPF program for this architecture (prog->filter is
 * malloc'd): compiled before fork, so the child only makes two prctl()s. */
int kars_seccomp_compile(struct sock_fprog *prog, struct kars_err *err);
/* Sets no_new_privs and installs prog in the calling thread; -errno. Safe
 * between fork and exec (no allocation). */
int kars_seccomp_install(const struct sock_fprog *prog);
/* The profile as OCI seccomp JSON, malloc'd, ending in a newline. */
char *kars_seccomp_json(void);

#endif
