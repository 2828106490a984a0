/* fuzz_run_file.c - libFuzzer target for the reader of a local sandbox's
 * run file, run/router.json (userspace/cli/sandbox_ref.h), which the kars
 * CLI's per-sandbox verbs trust for ports, UIDs and pids.
 *
 * Any bytes must give either a run description within the contract (ports
 * 1-65535, UIDs non-zero and distinct, pids positive or absent, paths
 * NUL-terminated) or an error naming the file. selftests/fuzz/run.sh builds
 * and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/cli/sandbox_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kars_sbref ref = {.owner = "team-a/bot",
					.router_dir = "/var/lib/kars/sandboxes/team-a/bot/router"};
	struct kars_err err = {0};
	struct kars_sbrun run;

	if (kars_sbrun_parse((const char *)data, size, "router.json", &ref, &run, &err)) {
		CHECK(err.code != 0 && strncmp(err.msg, "router.json", 11) == 0);
		return 0;
	}
	CHECK(run.router_port >= 1 && run.router_port <= 65535);
	CHECK(run.proxy_port >= 1 && run.proxy_port <= 65535);
	CHECK(run.router_uid != 0 && run.agent_uid != 0 && run.router_uid != run.agent_uid);
	CHECK(run.router_pid >= 0 && run.agent_pid >= 0);
	CHECK(memchr(run.audit_file, 0, sizeof(run.audit_file)) != NULL);
	CHECK(memchr(run.api_key_file, 0, sizeof(run.api_key_file)) != NULL);
	return 0;
}
