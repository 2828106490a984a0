/* blocklist_parse.c - see blocklist_parse.h. */
#include "blocklist_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOKENS 64

struct token {
	const char *p;
	size_t len;
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool token_is(const struct token *t, const char *s)
{
	return t->len == strlen(s) && memcmp(t->p, s, t->len) == 0;
}

static bool is_ip(const struct token *t)
{
	char buf[64];
	unsigned char addr[16];

	if (t->len >= sizeof(buf))
		return false;
	memcpy(buf, t->p, t->len);
	buf[t->len] = '\0';
	return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

/* Names every stock hosts file maps to itself; not blocklist entries. */
static bool hosts_boilerplate(const struct token *t)
{
	static const char *const names[] = {
	    "localhost",     "localhost.localdomain",
	    "local",	     "broadcasthost",
	    "ip6-localhost", "ip6-loopback",
	    "ip6-localnet",  "ip6-mcastprefix",
	    "ip6-allnodes",  "ip6-allrouters",
	    "ip6-allhosts",  "0.0.0.0",
	    "ip6-allhosts",  "localhost4",
	    "localhost6",    NULL,
	};

	for (int i = 0; names[i]; i++)
		if (token_is(t, names[i]))
			return true;
	return false;
}

static int one_name(const struct token *t, kars_blocklist_emit_fn emit, void *arg,
		    struct kars_err *err)
{
	char name[KARS_DNS_NAME_BUF];
	struct token n = *t;
	int ret;

	if (n.len >= 2 && n.p[0] == '*' && n.p[1] == '.') {
		n.p += 2;
		n.len -= 2;
	}
	if (memchr(n.p, '*', n.len))
		return kars_err_set(err, EINVAL,
				    "\"%.*s\": a wildcard is allowed only as a leading \"*.\"",
				    (int)t->len, t->p);
	if (n.len >= 2 && (memcmp(n.p, "||", 2) == 0 || n.p[n.len - 1] == '^'))
		return kars_err_set(err, EINVAL,
				    "\"%.*s\": adblock filter syntax is not supported (use the "
				    "domainswild or hosts format)",
				    (int)t->len, t->p);
	if (is_ip(&n))
		return kars_err_set(err, EINVAL,
				    "\"%.*s\" is an IP address; the blocklist holds names",
				    (int)t->len, t->p);
	ret = kars_dns_name_normalize(n.p, n.len, name, err);
	if (ret) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		kars_err_clear(err); /* the first error wins: replace it with a fuller one */
		return kars_err_set(err, -ret, "\"%.*s\": %s", (int)(t->len > 80 ? 80 : t->len),
				    t->p, msg);
	}
	ret = emit(arg, name);
	return ret ? kars_err_set(err, ret < 0 ? -ret : ret, "stopped") : 1;
}

int kars_blocklist_parse_line(const char *line, size_t len, kars_blocklist_emit_fn emit, void *arg,
			      struct kars_err *err)
{
	struct token tok[MAX_TOKENS];
	size_t n = 0, i = 0;
	int names = 0, ret;

	if (len && line[0] == '!')
		return 0;
	while (i < len) {
		size_t start;

		while (i < len && blank(line[i]))
			i++;
		if (i == len || line[i] == '#')
			break;
		start = i;
		while (i < len && !blank(line[i]))
			i++;
		if (n == MAX_TOKENS)
			return kars_err_set(err, E2BIG, "more than %d words on one line",
					    MAX_TOKENS);
		tok[n].p = line + start;
		tok[n].len = i - start;
		n++;
	}
	if (n == 0)
		return 0;
	if (!is_ip(&tok[0])) {
		if (n > 1)
			return kars_err_set(err, EINVAL,
					    "expected one name, or an address and names (hosts "
					    "format); \"%.*s\" is not an address",
					    (int)(tok[0].len > 80 ? 80 : tok[0].len), tok[0].p);
		return one_name(&tok[0], emit, arg, err);
	}
	if (!token_is(&tok[0], "0.0.0.0") && !token_is(&tok[0], "127.0.0.1") &&
	    !token_is(&tok[0], "::") && !token_is(&tok[0], "::1"))
		return kars_err_set(err, EINVAL,
				    "hosts entry maps to %.*s, not to a block address (0.0.0.0, "
				    "127.0.0.1, :: or ::1)",
				    (int)tok[0].len, tok[0].p);
	for (size_t t = 1; t < n; t++) {
		if (hosts_boilerplate(&tok[t]))
			continue;
		ret = one_name(&tok[t], emit, arg, err);
		if (ret < 0)
			return ret;
		names += ret;
	}
	return names;
}
