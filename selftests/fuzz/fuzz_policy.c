/* fuzz_policy.c - libFuzzer target for the "apply" request parser.
 *
 * Every byte string a client can send karsd goes through kars_json_parse and,
 * if it is an object, kars_policy_parse. Neither may crash, leak or read past
 * the input, and each must keep its contract: an accepted policy is one the
 * data plane can take, a refused one has a message and leaves nothing behind.
 * selftests/fuzz/run.sh builds and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i])
			return 0;
	}
	return 1;
}

static void check_accepted(const struct kars_policy *p)
{
	CHECK(strlen(p->sandbox) <= KARS_SANDBOX_NAME_MAX);
	CHECK(kars_sandbox_name_check(p->sandbox, "sandbox", NULL) == 0);
	CHECK(p->mode == KARS_MODE_STRICT || p->mode == KARS_MODE_LEARN);
	CHECK(p->agent.present || p->router.present);
	CHECK(!p->agent.present || (p->agent.cgroup[0] && !strstr(p->agent.cgroup, "..")));
	CHECK(!p->router.present || (p->router.cgroup[0] && !strstr(p->router.cgroup, "..")));
	CHECK(p->router_port && p->proxy_port && p->router_port != p->proxy_port);
	CHECK(p->resolver_port);
	CHECK(!p->has_resolver4 || kars_addr_is_v4(&p->resolver4));
	CHECK(!p->has_resolver6 || !kars_addr_is_v4(&p->resolver6));
	CHECK(p->learn_max <= KARS_MAX_LEARNED);
	CHECK(p->n_cidr <= KARS_MAX_CIDRS_PER_SANDBOX);
	for (size_t i = 0; i < p->n_exact; i++)
		CHECK(p->exact[i].port);
	for (size_t i = 0; i < p->n_cidr; i++) {
		const struct kars_cidr_rule *r = &p->cidr[i];

		CHECK(r->prefix128 <= 128);
		CHECK(r->port_lo && r->port_lo <= r->port_hi);
		CHECK(!kars_addr_is_v4(&r->addr) || r->prefix128 >= 96);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_err err = {0};
	struct kars_policy p;
	json_t *req;

	req = kars_json_parse((const char *)data, size, &err);
	if (!req) {
		CHECK(err.code && err.msg[0]);
		return 0;
	}
	if (json_is_object(req)) {
		memset(&p, 0xa5, sizeof(p));
		if (kars_policy_parse(req, &p, &err) == 0) {
			CHECK(!err.code);
			check_accepted(&p);
			kars_policy_free(&p);
		} else {
			CHECK(err.code && err.msg[0]);
			CHECK(all_zero(&p, sizeof(p)));
		}
	}
	json_decref(req);
	return 0;
}
