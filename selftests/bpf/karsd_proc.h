/* karsd_proc.h - the karsd process of a run, and its control API.
 *
 * One karsd per run, started from --karsd in the root network namespace and
 * the runner's cgroup, with its own socket (/tmp/kars-selftest-<pid>/) and pin
 * dir (/sys/fs/bpf/kars-selftest-<pid>), so a run never touches a node's real
 * karsd. test_karsd_restart.c kills and restarts it; the harness restarts it
 * before a test if it is gone, so one failure does not cascade.
 */
#ifndef KST_KARSD_PROC_H
#define KST_KARSD_PROC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct kst_env;

int kst_karsd_setup(const char *bin);
/* karsd's --socket-cgroup for the run (auto, socket or stamp). */
void kst_karsd_set_socket_cgroup(const char *mode);
const char *kst_karsd_socket_cgroup(void);
int kst_karsd_start(void);
/* Sends sig and reaps karsd (bounded); 0 or -errno. */
int kst_karsd_kill(int sig);
bool kst_karsd_running(void);
pid_t kst_karsd_pid(void);
const char *kst_karsd_socket(void);
const char *kst_karsd_pin_dir(void);
const char *kst_karsd_log(void);
/* The directory karsd is started to --protect (holds a file "secret"). */
const char *kst_karsd_protected_dir(void);
/* Whether karsd enforces at level "full" (BPF LSM); why holds the level
 * and, below full, the reason karsd gives. */
bool kst_lsm_full(char *why, size_t len);
/* Stops karsd and removes its pins and run dir (the log stays if keep_log). */
void kst_karsd_teardown(bool keep_log);
void kst_karsd_print_log_tail(int lines);

/* One request. 0 for {"ok":true}; -EPROTO for {"ok":false} with karsd's
 * error copied into errbuf; another -errno when karsd could not be reached.
 * *resp (may be NULL) gets the response. */
int kst_call(const json_t *req, json_t **resp, char *errbuf, size_t errlen);
/* The same, but reads karsd's answer even when the request could not be
 * written: karsd refuses an unauthorised peer as soon as it connects and
 * closes, so the request may meet EPIPE while the refusal line waits in the
 * receive queue. (kars_control_call gives up at the EPIPE.) */
int kst_call_unprivileged(const json_t *req, json_t **resp, char *errbuf, size_t errlen);

/* The main sandbox's policy: agent and router cgroups and UIDs, router and
 * proxy ports 18443/18444, resolver 192.0.2.53 / 2001:db8::53 port 5353,
 * strict, no rules. A new reference. */
json_t *kst_policy(struct kst_env *env);
/* The same for another sandbox of the test: name "kst-<pid>-<n>/<suffix>",
 * role cgroups given relative to the test's base cgroup. */
json_t *kst_policy_named(struct kst_env *env, const char *suffix, const char *agent_leaf,
			 const char *router_leaf, int router_port, int proxy_port);
void kst_rule_exact(json_t *policy, const char *ip, int port, const char *proto);
void kst_rule_cidr(json_t *policy, const char *cidr, const char *ports, const char *proto);
/* apply; the sandbox is removed after the test. *gen may be NULL. */
int kst_apply(struct kst_env *env, json_t *policy, long long *gen);
int kst_apply_default(struct kst_env *env);
int kst_remove(const char *sandbox, char *errbuf, size_t errlen);
/* The sandbox's entry of `list` (new reference) or NULL. */
json_t *kst_list_find(const char *sandbox);
/* The `learned` array (new reference) or NULL. */
json_t *kst_learned(const char *sandbox);

/* `subscribe`: an fd streaming event lines, or -errno. */
int kst_events_open(void);
/* The next event for which match() is true, within timeout_ms; NULL if none. */
json_t *kst_events_find(int fd, bool (*match)(const json_t *ev, const void *arg), const void *arg,
			int timeout_ms);

/* Small jansson readers that tolerate absent keys. */
const char *kst_json_str(const json_t *o, const char *key);
long long kst_json_int(const json_t *o, const char *key, long long dflt);

#endif
