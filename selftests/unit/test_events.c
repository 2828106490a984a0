/* test_events.c - data-plane events as JSON lines (kars_event_json).
 *
 * Socket-hook events carry a destination; the LSM programs' events carry
 * the socket family (and its protocol) instead, never a made-up address.
 */
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "events.h"
#include "unit.h"

static json_t *event_json(uint8_t hook, uint8_t reason, uint8_t family, uint8_t proto)
{
	struct kars_event e = {
	    .hook = hook,
	    .verdict = KARS_VERDICT_DENY,
	    .reason = reason,
	    .family = family,
	    .protocol = proto,
	    .role = KARS_ROLE_AGENT,
	    .uid = 1000,
	    .tgid = 42,
	    .comm = "agent",
	};

	return kars_event_json(&e, NULL);
}

static void test_socket_hook_has_destination(void **state)
{
	json_t *o = event_json(KARS_HOOK_CONNECT4, KARS_REASON_NOT_ALLOWED, AF_INET, IPPROTO_TCP);

	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "hook")), "connect4");
	assert_string_equal(json_string_value(json_object_get(o, "family")), "ipv4");
	assert_string_equal(json_string_value(json_object_get(o, "protocol")), "tcp");
	assert_non_null(json_object_get(o, "dst"));
	json_decref(o);
}

static void test_lsm_events_name_the_family(void **state)
{
	static const struct {
		uint8_t hook, reason, family, proto;
		const char *hook_name, *reason_name, *family_name, *proto_name;
	} cases[] = {
	    {KARS_HOOK_LSM_SOCKET_CREATE, KARS_REASON_SOCKET_FAMILY, AF_PACKET, 0,
	     "lsm_socket_create", "socket_family", "packet", "-"},
	    {KARS_HOOK_LSM_SOCKET_CREATE, KARS_REASON_SOCKET_FAMILY, AF_NETLINK, NETLINK_SOCK_DIAG,
	     "lsm_socket_create", "socket_family", "netlink", "sock_diag"},
	    {KARS_HOOK_LSM_SOCKET_CREATE, KARS_REASON_SOCKET_FAMILY, AF_VSOCK, 0,
	     "lsm_socket_create", "socket_family", "vsock", "-"},
	    {KARS_HOOK_LSM_SOCKET_CREATE, KARS_REASON_PROTOCOL, AF_INET, IPPROTO_ICMP,
	     "lsm_socket_create", "protocol", "ipv4", "icmp"},
	    {KARS_HOOK_LSM_CONNECT, KARS_REASON_FOREIGN_SOCKET, AF_INET6, 0, "lsm_socket_connect",
	     "foreign_socket", "ipv6", "other"},
	    {KARS_HOOK_LSM_SENDMSG, KARS_REASON_FOREIGN_SOCKET, AF_UNIX, 0, "lsm_socket_sendmsg",
	     "foreign_socket", "unix", "-"},
	    {KARS_HOOK_LSM_RECVMSG, KARS_REASON_FOREIGN_SOCKET, AF_PACKET, 0, "lsm_socket_recvmsg",
	     "foreign_socket", "packet", "-"},
	    {KARS_HOOK_LSM_UNIX, KARS_REASON_FOREIGN_SOCKET, AF_UNIX, 0, "lsm_unix",
	     "foreign_socket", "unix", "-"},
	    {KARS_HOOK_LSM_FILE_OPEN, KARS_REASON_PROTECTED_FILE, 0, 0, "lsm_file_open",
	     "protected_file", "none", "-"},
	    {KARS_HOOK_LSM_FILE_LINK, KARS_REASON_PROTECTED_FILE, 0, 0, "lsm_file_link",
	     "protected_file", "none", "-"},
	    {KARS_HOOK_LSM_SOCKET_CREATE, KARS_REASON_SOCKET_FAMILY, 99, 0, "lsm_socket_create",
	     "socket_family", "other", "-"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o =
		    event_json(cases[i].hook, cases[i].reason, cases[i].family, cases[i].proto);

		assert_non_null(o);
		assert_string_equal(json_string_value(json_object_get(o, "hook")),
				    cases[i].hook_name);
		assert_string_equal(json_string_value(json_object_get(o, "reason")),
				    cases[i].reason_name);
		assert_string_equal(json_string_value(json_object_get(o, "family")),
				    cases[i].family_name);
		assert_string_equal(json_string_value(json_object_get(o, "protocol")),
				    cases[i].proto_name);
		assert_string_equal(json_string_value(json_object_get(o, "comm")), "agent");
		assert_int_equal(json_integer_value(json_object_get(o, "uid")), 1000);
		assert_null(json_object_get(o, "dst"));
		json_decref(o);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_socket_hook_has_destination),
    cmocka_unit_test(test_lsm_events_name_the_family),
};

KARS_UNIT_MAIN(tests)
