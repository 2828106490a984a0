/* egress_flags.h - kars-controller's options for what every sandbox's karsd
 * egress request carries besides its allowlist: the DNS resolver the
 * sandbox may query and the DNS tunnelling caps (egress_compile.h,
 * docs/dns.md). Parsed strictly: a bad value names the flag.
 */
#ifndef KARS_CONTROLLER_EGRESS_FLAGS_H
#define KARS_CONTROLLER_EGRESS_FLAGS_H

#include "egress_compile.h"
#include "err.h"

enum kars_egress_flag {
	KARS_FLAG_DNS_RESOLVER = 0x100, /* --dns-resolver IPV4 */
	KARS_FLAG_DNS_RESOLVER6,	/* --dns-resolver6 IPV6 */
	KARS_FLAG_DNS_PORT,		/* --dns-resolver-port 1..65535 */
	KARS_FLAG_DNS_MAX_NAME,		/* --dns-max-name-length 1..253 */
	KARS_FLAG_DNS_MAX_QPS,		/* --dns-max-qps 1..1000000 */
};

#define KARS_EGRESS_LONG_OPTIONS                                                                   \
	{"dns-resolver", required_argument, NULL, KARS_FLAG_DNS_RESOLVER},                         \
	    {"dns-resolver6", required_argument, NULL, KARS_FLAG_DNS_RESOLVER6},                   \
	    {"dns-resolver-port", required_argument, NULL, KARS_FLAG_DNS_PORT},                    \
	    {"dns-max-name-length", required_argument, NULL, KARS_FLAG_DNS_MAX_NAME},              \
	{                                                                                          \
		"dns-max-qps", required_argument, NULL, KARS_FLAG_DNS_MAX_QPS                      \
	}

#define KARS_EGRESS_USAGE                                                                          \
	"  --dns-resolver IPV4     the resolver sandboxes may query (karsd's egress request)\n"    \
	"  --dns-resolver6 IPV6    the same, IPv6\n"                                               \
	"  --dns-resolver-port N   its port (default 53)\n"                                        \
	"  --dns-max-name-length N DNS tunnelling cap: longest query name, 1-253\n"                \
	"  --dns-max-qps N         DNS tunnelling cap: queries per second, 1-1000000\n"

/* Applies option opt (one of enum kars_egress_flag) with value arg to o.
 * 0, or -EINVAL with err naming the flag. arg must outlive o. */
int kars_egress_flag_set(struct kars_egress_opts *o, int opt, const char *arg,
			 struct kars_err *err);

#endif
