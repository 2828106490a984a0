/* test_karsd_fds.c - karsd keeps no file descriptor per apply or remove.
 *
 * karsd once leaked the fd of every pinned link it attached or re-adopted
 * (bpf_link__disconnect() before bpf_link__destroy() never closes it). The
 * host's fd limit hid it; the 6.1 VM's limit of 1024 stopped every apply
 * after 40 tests. Re-applying and removing a sandbox many times must leave
 * karsd's fd count where it was.
 */
#include <dirent.h>
#include <stdio.h>

#include "harness.h"
#include "karsd_proc.h"

#define ROUNDS 20

static int karsd_fd_count(void)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)kst_karsd_pid());
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

KST_TEST(karsd_fds_stable_across_applies)
{
	char err[512];
	int before, after;

	/* One apply first: whatever karsd opens once (maps, the ring buffer)
	 * is open by now. */
	if (!ASSERT_OK(kst_apply_default(env), "first apply"))
		return;
	before = karsd_fd_count();
	if (!ASSERT_GT(before, 0, "karsd's fds"))
		return;
	for (int i = 0; i < ROUNDS; i++) {
		if (!ASSERT_OK(kst_apply_default(env), "re-apply (re-adopts every link)"))
			return;
	}
	for (int i = 0; i < ROUNDS / 4; i++) {
		if (!ASSERT_OK(kst_remove(env->sandbox, err, sizeof(err)), "remove") ||
		    !ASSERT_OK(kst_apply_default(env), "apply again (attaches anew)"))
			return;
	}
	after = karsd_fd_count();
	/* 15 links per apply: a leak shows as hundreds. A few of slack for
	 * control connections still closing. */
	ASSERT_TRUE(after < before + 5, "karsd's fd count did not grow");
	if (after >= before + 5)
		printf("  karsd fds: %d before, %d after %d applies\n", before, after,
		       ROUNDS + ROUNDS / 4);
}
