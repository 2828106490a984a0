/* kars_maps.bpf.h - the maps both BPF objects use, defined once.
 *
 * sandbox.bpf.c (the cgroup programs) and lsm.bpf.c (the LSM backstop) are
 * two objects that meet through pinning: karsd pins these maps under
 * <pin-dir>/maps when it loads sandbox.bpf.o and hands the same pins to
 * lsm.bpf.o, whose programs then read the policies the cgroup programs read
 * and count and report into the same stats, counters and ring buffer.
 * libbpf reuses a pinned map only if its definition matches, so both objects
 * include this one definition rather than keeping two copies in step.
 */
#ifndef KARS_MAPS_BPF_H
#define KARS_MAPS_BPF_H

#include "kars_dataplane.h"

/* Role cgroup id -> its sandbox's policy (written by karsd on apply). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct kars_cgroup_policy);
} kars_cgroups SEC(".maps");

/* Verdict counts per sandbox, verdict and reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, KARS_MAX_STATS);
	__type(key, struct kars_stat_key);
	__type(value, __u64);
} kars_stats SEC(".maps");

/* Node-wide counters (enum kars_counter): dropped events, a full stats map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KARS_COUNTER__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} kars_counters SEC(".maps");

/* Verdict events (struct kars_event, a DNS tail after DNS ones) for karsd. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KARS_EVENTS_RINGBUF);
} kars_events SEC(".maps");

#endif
