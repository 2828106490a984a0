/* addr_class.h - the address classes the egress proxy never dials.
 *
 * A name the agent may reach can still resolve to an address inside the
 * host or its network (DNS rebinding: "allowed.example A 10.0.0.5", or
 * 169.254.169.254 for cloud credentials). After resolution the proxy refuses
 * every address of these classes, IPv4, IPv6 and the IPv6 forms that carry
 * an IPv4 address (v4-mapped, v4-compatible, NAT64 64:ff9b::/96, 6to4
 * 2002::/16), which are judged by the IPv4 address inside.
 */
#ifndef KARS_ADDR_CLASS_H
#define KARS_ADDR_CLASS_H

#include "addr.h"

/* The class of a, as a reason string ("loopback", "private", "link_local",
 * "metadata", "cgnat", "ula", "unspecified", "multicast", "reserved"), or
 * NULL for a public unicast address. */
const char *kars_addr_refused_class(const struct kars_addr *a);

#endif
