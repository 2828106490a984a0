/* a2a_window.c - see a2a_window.h. */
#include "a2a_window.h"

#include <errno.h>
#include <time.h>

#include "validate.h"

int kars_a2a_window_check(const json_t *spec, const char *start, struct kars_err *err)
{
	const char *exp =
	    json_string_value(json_object_get(json_object_get(spec, "a2a"), "expiresAt"));
	time_t t_exp, t_start;

	if (!exp)
		return 0;
	if (kars_date_time_parse(start, &t_start))
		return kars_err_set(err, EINVAL, "a2a window start \"%s\" is not RFC 3339",
				    start ?: "");
	/* the schema's format makes it parse; fail closed if not */
	if (kars_date_time_parse(exp, &t_exp))
		return kars_err_set(err, EINVAL,
				    "spec.a2a.expiresAt: Invalid value: \"%s\": must be an RFC "
				    "3339 date-time",
				    exp);
	if ((long long)t_exp - (long long)t_start > KARS_A2A_MAX_WINDOW_S)
		return kars_err_set(err, EINVAL,
				    "spec.a2a.expiresAt: Invalid value: \"%s\": must be at most 30 "
				    "days after %s, when this generation was first seen",
				    exp, start);
	return 0;
}
