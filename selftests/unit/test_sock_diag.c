/* test_sock_diag.c - who is at the other end of a loopback TCP connection.
 *
 * Real sockets: a listener here, a client in a child process that drops to
 * UID 1000 before it creates its socket. The accepted end must resolve to the
 * client socket's own cookie (as BPF sees it) and to UID 1000: that is how an
 * egress proxy asks karsd for a redirect's original destination, and how the
 * router's control endpoints on TCP tell the agent's UID from anyone else's.
 * As root the client drops to UID 1000; otherwise it keeps the caller's UID.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sock_diag.h"

static int listen_loopback(int family, struct sockaddr_storage *addr, socklen_t *len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(addr, 0, sizeof(*addr));
	addr->ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)addr)->sin6_addr = in6addr_loopback;
	*len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)addr, *len), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, len), 0);
	return fd;
}

/* The child connects as uid, sends its own socket cookie, waits for EOF. */
static pid_t client(const struct sockaddr_storage *addr, socklen_t len, uid_t uid)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t cookie = 0;
		socklen_t clen = sizeof(cookie);
		char c;
		int fd;

		if (uid != getuid() && (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
			_exit(2);
		fd = socket(addr->ss_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (const struct sockaddr *)addr, len) ||
		    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen) ||
		    write(fd, &cookie, sizeof(cookie)) != sizeof(cookie))
			_exit(3);
		while (read(fd, &c, 1) > 0)
			;
		_exit(0);
	}
	return pid;
}

static void check_family(int family, uid_t uid)
{
	struct sockaddr_storage addr;
	struct kars_sock_peer peer = {0};
	struct kars_err err = {0};
	uint64_t sent = 0;
	socklen_t len;
	int lfd = listen_loopback(family, &addr, &len), afd, status;
	pid_t pid = client(&addr, len, uid);

	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(read(afd, &sent, sizeof(sent)), sizeof(sent));
	assert_int_equal(kars_sock_peer_lookup(afd, &peer, &err), 0);
	assert_true(sent != 0);
	assert_true(peer.cookie == sent);
	assert_int_equal(peer.uid, uid);
	close(afd);
	close(lfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_peer_ipv4(void **state)
{
	check_family(AF_INET, getuid() == 0 ? 1000 : getuid());
}

static void test_peer_ipv6(void **state)
{
	check_family(AF_INET6, getuid() == 0 ? 1000 : getuid());
}

/* A socket whose peer is gone has nothing to find: an error, not a guess. */
static void test_peer_gone(void **state)
{
	struct sockaddr_storage addr;
	struct kars_sock_peer peer = {0};
	struct kars_err err = {0};
	socklen_t len;
	int lfd = listen_loopback(AF_INET, &addr, &len), cfd, afd;
	struct linger abort_close = {.l_onoff = 1, .l_linger = 0};

	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&addr, len), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	close(cfd);
	assert_true(kars_sock_peer_lookup(afd, &peer, &err) < 0);
	assert_true(strstr(err.msg, "sock_diag") != NULL || strstr(err.msg, "peer of fd") != NULL);
	close(afd);
	close(lfd);
}

static void test_not_a_tcp_socket(void **state)
{
	struct kars_sock_peer peer;
	struct kars_err err = {0};
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_true(kars_sock_peer_lookup(fds[0], &peer, &err) < 0);
	assert_true(strstr(err.msg, "not a TCP/IP connection") != NULL);
	close(fds[0]);
	close(fds[1]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_peer_ipv4),
    cmocka_unit_test(test_peer_ipv6),
    cmocka_unit_test(test_peer_gone),
    cmocka_unit_test(test_not_a_tcp_socket),
};

KARS_UNIT_MAIN(tests)
