/* local_seccomp.c - the kars-strict table, its argument filters, and the two
 * renderings of it: a libseccomp filter installed before the agent's exec,
 * and the OCI JSON of deploy/seccomp/kars-strict.json.
 */
#include "local_seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

const struct kars_seccomp_entry kars_seccomp_table[] = {
    {"accept", KARS_SC_ALLOW},
    {"accept4", KARS_SC_ALLOW},
    {"access", KARS_SC_ALLOW},
    {"alarm", KARS_SC_ALLOW},
    {"arch_prctl", KARS_SC_ALLOW},
    {"bind", KARS_SC_ALLOW},
    {"brk", KARS_SC_ALLOW},
    {"capget", KARS_SC_ALLOW},
    {"chdir", KARS_SC_ALLOW},
    {"chmod", KARS_SC_ALLOW},
    {"clock_getres", KARS_SC_ALLOW},
    {"clock_gettime", KARS_SC_ALLOW},
    {"clock_nanosleep", KARS_SC_ALLOW},
    {"clone", KARS_SC_ALLOW},
    {"close", KARS_SC_ALLOW},
    {"close_range", KARS_SC_ALLOW},
    {"connect", KARS_SC_ALLOW},
    {"copy_file_range", KARS_SC_ALLOW},
    {"dup", KARS_SC_ALLOW},
    {"dup2", KARS_SC_ALLOW},
    {"dup3", KARS_SC_ALLOW},
    {"epoll_create1", KARS_SC_ALLOW},
    {"epoll_ctl", KARS_SC_ALLOW},
    {"epoll_pwait", KARS_SC_ALLOW},
    {"epoll_wait", KARS_SC_ALLOW},
    {"eventfd2", KARS_SC_ALLOW},
    {"execve", KARS_SC_ALLOW},
    {"execveat", KARS_SC_ALLOW},
    {"exit", KARS_SC_ALLOW},
    {"exit_group", KARS_SC_ALLOW},
    {"faccessat", KARS_SC_ALLOW},
    {"faccessat2", KARS_SC_ALLOW},
    {"fadvise64", KARS_SC_ALLOW},
    {"fallocate", KARS_SC_ALLOW},
    {"fchdir", KARS_SC_ALLOW},
    {"fchmod", KARS_SC_ALLOW},
    {"fchmodat", KARS_SC_ALLOW},
    {"fchownat", KARS_SC_ALLOW},
    {"fcntl", KARS_SC_ALLOW},
    {"fdatasync", KARS_SC_ALLOW},
    {"fgetxattr", KARS_SC_ALLOW},
    {"flock", KARS_SC_ALLOW},
    {"fork", KARS_SC_ALLOW},
    {"fstat", KARS_SC_ALLOW},
    {"fstatfs", KARS_SC_ALLOW},
    {"fsync", KARS_SC_ALLOW},
    {"ftruncate", KARS_SC_ALLOW},
    {"futex", KARS_SC_ALLOW},
    {"get_robust_list", KARS_SC_ALLOW},
    {"getcwd", KARS_SC_ALLOW},
    {"getdents", KARS_SC_ALLOW},
    {"getdents64", KARS_SC_ALLOW},
    {"getegid", KARS_SC_ALLOW},
    {"geteuid", KARS_SC_ALLOW},
    {"getgid", KARS_SC_ALLOW},
    {"getgroups", KARS_SC_ALLOW},
    {"getpeername", KARS_SC_ALLOW},
    {"getpgid", KARS_SC_ALLOW},
    {"getpid", KARS_SC_ALLOW},
    {"getppid", KARS_SC_ALLOW},
    {"getrandom", KARS_SC_ALLOW},
    {"getresgid", KARS_SC_ALLOW},
    {"getresuid", KARS_SC_ALLOW},
    {"getrlimit", KARS_SC_ALLOW},
    {"getrusage", KARS_SC_ALLOW},
    {"getsockname", KARS_SC_ALLOW},
    {"getsockopt", KARS_SC_ALLOW},
    {"gettid", KARS_SC_ALLOW},
    {"gettimeofday", KARS_SC_ALLOW},
    {"getuid", KARS_SC_ALLOW},
    {"getxattr", KARS_SC_ALLOW},
    {"inotify_add_watch", KARS_SC_ALLOW},
    {"inotify_init1", KARS_SC_ALLOW},
    {"inotify_rm_watch", KARS_SC_ALLOW},
    {"ioctl", KARS_SC_ALLOW},
    {"kill", KARS_SC_ALLOW},
    {"landlock_add_rule", KARS_SC_ALLOW},
    {"landlock_create_ruleset", KARS_SC_ALLOW},
    {"landlock_restrict_self", KARS_SC_ALLOW},
    {"linkat", KARS_SC_ALLOW},
    {"listen", KARS_SC_ALLOW},
    {"listxattr", KARS_SC_ALLOW},
    {"lseek", KARS_SC_ALLOW},
    {"lstat", KARS_SC_ALLOW},
    {"madvise", KARS_SC_ALLOW},
    {"membarrier", KARS_SC_ALLOW},
    {"memfd_create", KARS_SC_ALLOW},
    {"mkdir", KARS_SC_ALLOW},
    {"mkdirat", KARS_SC_ALLOW},
    {"mmap", KARS_SC_ALLOW},
    {"mprotect", KARS_SC_ALLOW},
    {"mremap", KARS_SC_ALLOW},
    {"msync", KARS_SC_ALLOW},
    {"munmap", KARS_SC_ALLOW},
    {"nanosleep", KARS_SC_ALLOW},
    {"newfstatat", KARS_SC_ALLOW},
    {"open", KARS_SC_ALLOW},
    {"openat", KARS_SC_ALLOW},
    {"openat2", KARS_SC_ALLOW},
    {"pidfd_getfd", KARS_SC_ALLOW},
    {"pidfd_open", KARS_SC_ALLOW},
    {"pidfd_send_signal", KARS_SC_ALLOW},
    {"pipe", KARS_SC_ALLOW},
    {"pipe2", KARS_SC_ALLOW},
    {"poll", KARS_SC_ALLOW},
    {"ppoll", KARS_SC_ALLOW},
    {"prctl", KARS_SC_ALLOW},
    {"pread64", KARS_SC_ALLOW},
    {"preadv", KARS_SC_ALLOW},
    {"prlimit64", KARS_SC_ALLOW},
    {"process_vm_readv", KARS_SC_ALLOW},
    {"pselect6", KARS_SC_ALLOW},
    {"pwrite64", KARS_SC_ALLOW},
    {"pwritev", KARS_SC_ALLOW},
    {"read", KARS_SC_ALLOW},
    {"readlink", KARS_SC_ALLOW},
    {"readlinkat", KARS_SC_ALLOW},
    {"readv", KARS_SC_ALLOW},
    {"recvfrom", KARS_SC_ALLOW},
    {"recvmmsg", KARS_SC_ALLOW},
    {"recvmsg", KARS_SC_ALLOW},
    {"rename", KARS_SC_ALLOW},
    {"renameat", KARS_SC_ALLOW},
    {"renameat2", KARS_SC_ALLOW},
    {"restart_syscall", KARS_SC_ALLOW},
    {"rmdir", KARS_SC_ALLOW},
    {"rseq", KARS_SC_ALLOW},
    {"rt_sigaction", KARS_SC_ALLOW},
    {"rt_sigpending", KARS_SC_ALLOW},
    {"rt_sigprocmask", KARS_SC_ALLOW},
    {"rt_sigreturn", KARS_SC_ALLOW},
    {"rt_sigsuspend", KARS_SC_ALLOW},
    {"rt_sigtimedwait", KARS_SC_ALLOW},
    {"sched_getaffinity", KARS_SC_ALLOW},
    {"sched_yield", KARS_SC_ALLOW},
    {"select", KARS_SC_ALLOW},
    {"sendfile", KARS_SC_ALLOW},
    {"sendmmsg", KARS_SC_ALLOW},
    {"sendmsg", KARS_SC_ALLOW},
    {"sendto", KARS_SC_ALLOW},
    {"set_robust_list", KARS_SC_ALLOW},
    {"set_tid_address", KARS_SC_ALLOW},
    {"setitimer", KARS_SC_ALLOW},
    {"setpgid", KARS_SC_ALLOW},
    {"setsid", KARS_SC_ALLOW},
    {"setsockopt", KARS_SC_ALLOW},
    {"shutdown", KARS_SC_ALLOW},
    {"sigaltstack", KARS_SC_ALLOW},
    {"socket", KARS_SC_ALLOW},
    {"socketpair", KARS_SC_ALLOW},
    {"stat", KARS_SC_ALLOW},
    {"statfs", KARS_SC_ALLOW},
    {"statx", KARS_SC_ALLOW},
    {"symlinkat", KARS_SC_ALLOW},
    {"sync", KARS_SC_ALLOW},
    {"sysinfo", KARS_SC_ALLOW},
    {"tgkill", KARS_SC_ALLOW},
    {"timer_create", KARS_SC_ALLOW},
    {"timer_delete", KARS_SC_ALLOW},
    {"timer_gettime", KARS_SC_ALLOW},
    {"timer_settime", KARS_SC_ALLOW},
    {"timerfd_create", KARS_SC_ALLOW},
    {"timerfd_settime", KARS_SC_ALLOW},
    {"times", KARS_SC_ALLOW},
    {"truncate", KARS_SC_ALLOW},
    {"umask", KARS_SC_ALLOW},
    {"uname", KARS_SC_ALLOW},
    {"unlink", KARS_SC_ALLOW},
    {"unlinkat", KARS_SC_ALLOW},
    {"utimensat", KARS_SC_ALLOW},
    {"vfork", KARS_SC_ALLOW},
    {"wait4", KARS_SC_ALLOW},
    {"waitid", KARS_SC_ALLOW},
    {"write", KARS_SC_ALLOW},
    {"writev", KARS_SC_ALLOW},
    {"mount", KARS_SC_DENY},
    {"umount2", KARS_SC_DENY},
    {"pivot_root", KARS_SC_DENY},
    {"ptrace", KARS_SC_DENY},
    {"kexec_load", KARS_SC_DENY},
    {"kexec_file_load", KARS_SC_DENY},
    {"init_module", KARS_SC_DENY},
    {"finit_module", KARS_SC_DENY},
    {"delete_module", KARS_SC_DENY},
    {"create_module", KARS_SC_DENY},
    {"query_module", KARS_SC_DENY},
    {"get_kernel_syms", KARS_SC_DENY},
    {"reboot", KARS_SC_DENY},
    {"swapon", KARS_SC_DENY},
    {"swapoff", KARS_SC_DENY},
    {"settimeofday", KARS_SC_DENY},
    {"clock_settime", KARS_SC_DENY},
    {"adjtimex", KARS_SC_DENY},
    {"acct", KARS_SC_DENY},
    {"quotactl", KARS_SC_DENY},
    {"sethostname", KARS_SC_DENY},
    {"setdomainname", KARS_SC_DENY},
    {"ioperm", KARS_SC_DENY},
    {"iopl", KARS_SC_DENY},
    {"nfsservctl", KARS_SC_DENY},
    {"personality", KARS_SC_DENY},
    {"keyctl", KARS_SC_DENY},
    {"request_key", KARS_SC_DENY},
    {"add_key", KARS_SC_DENY},
    {"bpf", KARS_SC_DENY},
    {"unshare", KARS_SC_DENY},
    {"setns", KARS_SC_DENY},
    {"userfaultfd", KARS_SC_DENY},
    {"perf_event_open", KARS_SC_DENY},
    {"move_pages", KARS_SC_DENY},
    {"migrate_pages", KARS_SC_DENY},
    {"mbind", KARS_SC_DENY},
    {"set_mempolicy", KARS_SC_DENY},
    {"get_mempolicy", KARS_SC_DENY},
    {"lookup_dcookie", KARS_SC_DENY},
    {"kcmp", KARS_SC_DENY},
};
const size_t kars_seccomp_table_len = sizeof(kars_seccomp_table) / sizeof(kars_seccomp_table[0]);

/* socket() is allowed only for these (domain, type) pairs, type compared
 * without SOCK_NONBLOCK / SOCK_CLOEXEC; protocol -1 means any. */
static const struct {
	int domain, type, protocol;
} socket_allow[] = {
    {AF_UNIX, SOCK_STREAM, -1},
    {AF_UNIX, SOCK_DGRAM, -1},
    {AF_UNIX, SOCK_SEQPACKET, -1},
    {AF_INET, SOCK_STREAM, -1},
    {AF_INET, SOCK_DGRAM, -1},
    {AF_INET6, SOCK_STREAM, -1},
    {AF_INET6, SOCK_DGRAM, -1},
    {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
    {AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE},
};
#define SOCK_TYPE_MASK 0xf

/* The flags of clone() that make a namespace. CLONE_NEWTIME shares its bit
 * with the exit signal in clone(), so it can only come through clone3(). */
#define CLONE_NS_FLAGS                                                                             \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
	 CLONE_NEWCGROUP)

/* socket and clone count as allowed, but only through their argument rules:
 * an unconditional allow would override them. */
static bool has_arg_rules(const char *name)
{
	return strcmp(name, "socket") == 0 || strcmp(name, "clone") == 0;
}

size_t kars_seccomp_count(enum kars_seccomp_action action)
{
	size_t n = 0;

	for (size_t i = 0; i < kars_seccomp_table_len; i++)
		n += kars_seccomp_table[i].action == action;
	return n;
}

static int add_rules(scmp_filter_ctx ctx, struct kars_err *err)
{
	int nr, ret;

	for (size_t i = 0; i < kars_seccomp_table_len; i++) {
		const struct kars_seccomp_entry *e = &kars_seccomp_table[i];

		nr = seccomp_syscall_resolve_name(e->name);
		if (nr == __NR_SCMP_ERROR)
			return kars_err_set(err, EINVAL, "seccomp: unknown system call \"%s\"",
					    e->name);
		/* The explicit denials are the default action already (libseccomp
		 * refuses a rule that repeats it); they are listed for the JSON. */
		if (e->action == KARS_SC_DENY || has_arg_rules(e->name))
			continue;
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		/* A call this architecture does not have (create_module on
		 * aarch64): nothing to filter. */
		if (ret == -EDOM || ret == -EFAULT)
			continue;
		if (ret)
			return kars_err_set(err, -ret, "seccomp: rule for %s: %s", e->name,
					    strerror(-ret));
	}
	for (size_t i = 0; i < sizeof(socket_allow) / sizeof(socket_allow[0]); i++) {
		struct scmp_arg_cmp c[3] = {
		    {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)socket_allow[i].domain},
		    {.arg = 1,
		     .op = SCMP_CMP_MASKED_EQ,
		     .datum_a = SOCK_TYPE_MASK,
		     .datum_b = (scmp_datum_t)socket_allow[i].type},
		    {.arg = 2,
		     .op = SCMP_CMP_EQ,
		     .datum_a = (scmp_datum_t)socket_allow[i].protocol},
		};

		ret = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
					     socket_allow[i].protocol < 0 ? 2 : 3, c);
		if (ret)
			return kars_err_set(err, -ret, "seccomp: socket rule %zu: %s", i,
					    strerror(-ret));
	}
	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (ret)
		return kars_err_set(err, -ret, "seccomp: clone rules: %s", strerror(-ret));
	return 0;
}

int kars_seccomp_compile(struct sock_fprog *prog, struct kars_err *err)
{
	scmp_filter_ctx ctx;
	int fd = -1, ret;
	off_t len;

	memset(prog, 0, sizeof(*prog));
	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return kars_err_set(err, ENOMEM, "seccomp_init failed");
	ret = add_rules(ctx, err);
	if (ret)
		goto cleanup;
	fd = memfd_create("kars-strict", MFD_CLOEXEC);
	if (fd < 0) {
		ret = kars_err_set(err, errno, "memfd_create: %s", strerror(errno));
		goto cleanup;
	}
	ret = seccomp_export_bpf(ctx, fd);
	if (ret) {
		kars_err_set(err, -ret, "seccomp_export_bpf: %s", strerror(-ret));
		goto cleanup;
	}
	len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % sizeof(struct sock_filter) ||
	    len / sizeof(struct sock_filter) > 4096) {
		ret = kars_err_set(err, EINVAL, "seccomp: exported filter of %lld bytes",
				   (long long)len);
		goto cleanup;
	}
	prog->filter = malloc((size_t)len);
	if (!prog->filter || pread(fd, prog->filter, (size_t)len, 0) != len) {
		ret = kars_err_set(err, EIO, "seccomp: reading the exported filter");
		goto cleanup;
	}
	prog->len = (unsigned short)(len / sizeof(struct sock_filter));
cleanup:
	if (ret) {
		free(prog->filter);
		prog->filter = NULL;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ret;
}

int kars_seccomp_install(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0))
		return -errno;
	return 0;
}

/* OCI's MASKED_EQ is (arg & value) == valueTwo. */
static json_t *arg(int index, uint64_t value, uint64_t value_two, const char *op)
{
	json_t *a = json_object();

	json_object_set_new(a, "index", json_integer(index));
	json_object_set_new(a, "value", json_integer((json_int_t)value));
	if (strcmp(op, "SCMP_CMP_MASKED_EQ") == 0)
		json_object_set_new(a, "valueTwo", json_integer((json_int_t)value_two));
	json_object_set_new(a, "op", json_string(op));
	return a;
}

static json_t *rule(const char *name, const char *action, json_t *args, int errno_ret)
{
	json_t *r = json_object(), *names = json_array();

	json_array_append_new(names, json_string(name));
	json_object_set_new(r, "names", names);
	json_object_set_new(r, "action", json_string(action));
	if (errno_ret)
		json_object_set_new(r, "errnoRet", json_integer(errno_ret));
	if (args)
		json_object_set_new(r, "args", args);
	return r;
}

char *kars_seccomp_json(void)
{
	json_t *root = json_object(), *syscalls = json_array(), *allow = json_array();
	json_t *deny = json_array(), *archs = json_array(), *r;
	char *out = NULL, *dump;

	json_array_append_new(archs, json_string("SCMP_ARCH_X86_64"));
	json_array_append_new(archs, json_string("SCMP_ARCH_AARCH64"));
	json_object_set_new(root, "defaultAction", json_string("SCMP_ACT_ERRNO"));
	json_object_set_new(root, "defaultErrnoRet", json_integer(EPERM));
	json_object_set_new(root, "architectures", archs);
	for (size_t i = 0; i < kars_seccomp_table_len; i++)
		if (!has_arg_rules(kars_seccomp_table[i].name))
			json_array_append_new(kars_seccomp_table[i].action == KARS_SC_ALLOW ? allow
											    : deny,
					      json_string(kars_seccomp_table[i].name));
	r = json_object();
	json_object_set_new(r, "names", allow);
	json_object_set_new(r, "action", json_string("SCMP_ACT_ALLOW"));
	json_array_append_new(syscalls, r);
	for (size_t i = 0; i < sizeof(socket_allow) / sizeof(socket_allow[0]); i++) {
		json_t *args = json_array();

		json_array_append_new(args, arg(0, socket_allow[i].domain, 0, "SCMP_CMP_EQ"));
		json_array_append_new(
		    args, arg(1, SOCK_TYPE_MASK, socket_allow[i].type, "SCMP_CMP_MASKED_EQ"));
		if (socket_allow[i].protocol >= 0)
			json_array_append_new(args,
					      arg(2, socket_allow[i].protocol, 0, "SCMP_CMP_EQ"));
		json_array_append_new(syscalls, rule("socket", "SCMP_ACT_ALLOW", args, 0));
	}
	r = json_array();
	json_array_append_new(r, arg(0, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"));
	json_array_append_new(syscalls, rule("clone", "SCMP_ACT_ALLOW", r, 0));
	json_array_append_new(syscalls, rule("clone3", "SCMP_ACT_ERRNO", NULL, ENOSYS));
	r = json_object();
	json_object_set_new(r, "names", deny);
	json_object_set_new(r, "action", json_string("SCMP_ACT_ERRNO"));
	json_object_set_new(r, "errnoRet", json_integer(EPERM));
	json_array_append_new(syscalls, r);
	json_object_set_new(root, "syscalls", syscalls);
	dump = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (dump && (out = malloc(strlen(dump) + 2)))
		sprintf(out, "%s\n", dump);
	free(dump);
	json_decref(root);
	return out;
}
