/* egress_flags.c - see egress_flags.h. */
#include "egress_flags.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

static int number(const char *flag, const char *arg, unsigned long max, unsigned long *out,
		  struct kars_err *err)
{
	char *end = NULL;

	errno = 0;
	*out = arg[0] >= '0' && arg[0] <= '9' ? strtoul(arg, &end, 10) : 0;
	if (!end || *end || errno || *out < 1 || *out > max)
		return kars_err_set(err, EINVAL, "--%s: \"%s\" is not a number from 1 to %lu", flag,
				    arg, max);
	return 0;
}

int kars_egress_flag_set(struct kars_egress_opts *o, int opt, const char *arg, struct kars_err *err)
{
	unsigned char addr[16];
	unsigned long n;
	int ret;

	switch (opt) {
	case KARS_FLAG_DNS_RESOLVER:
		if (inet_pton(AF_INET, arg, addr) != 1)
			return kars_err_set(err, EINVAL,
					    "--dns-resolver: \"%s\" is not an IPv4 address", arg);
		o->resolver_ipv4 = arg;
		return 0;
	case KARS_FLAG_DNS_RESOLVER6:
		if (inet_pton(AF_INET6, arg, addr) != 1)
			return kars_err_set(err, EINVAL,
					    "--dns-resolver6: \"%s\" is not an IPv6 address", arg);
		o->resolver_ipv6 = arg;
		return 0;
	case KARS_FLAG_DNS_PORT:
		ret = number("dns-resolver-port", arg, 65535, &n, err);
		o->resolver_port = ret ? o->resolver_port : (uint16_t)n;
		return ret;
	case KARS_FLAG_DNS_MAX_NAME:
		ret = number("dns-max-name-length", arg, 253, &n, err);
		o->dns_max_name_length = ret ? o->dns_max_name_length : (unsigned)n;
		return ret;
	case KARS_FLAG_DNS_MAX_QPS:
		ret = number("dns-max-qps", arg, 1000000, &n, err);
		o->dns_max_qps = ret ? o->dns_max_qps : (unsigned)n;
		return ret;
	}
	return kars_err_set(err, EINVAL, "unknown egress option %d", opt);
}
