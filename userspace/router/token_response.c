/* token_response.c - see token_response.h. */
#include "token_response.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A JSON integer, or a string of up to 18 digits (IMDS sends numbers as
 * strings); in [-10^18, 10^18], so seconds * 1000 cannot overflow. */
static bool json_seconds(const json_t *v, long long *out)
{
	const char *s;

	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n < -1000000000000000000LL || n > 1000000000000000000LL)
			return false;
		*out = (long long)n;
		return true;
	}
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

/* "error: first line of error_description" (AAD appends "\r\nTrace ID: ..."). */
static void describe_error(const json_t *body, char *out, size_t len)
{
	const char *code = json_string_value(json_object_get(body, "error"));
	const char *desc = json_string_value(json_object_get(body, "error_description"));

	snprintf(out, len, "%.64s%s%.200s", code ? code : "no error code", desc ? ": " : "",
		 desc ? desc : "");
	out[strcspn(out, "\r\n")] = '\0';
}

/* Takes the token out of a 200 answer; the parsed copy is wiped. */
static int take_token(json_t *body, char **header, long long *life_ms, struct kars_err *err)
{
	json_t *token = json_object_get(body, "access_token");
	const char *type = json_string_value(json_object_get(body, "token_type"));
	long long now = (long long)time(NULL), n;
	const char *t;
	size_t len;

	if (!json_is_string(token) || !json_string_length(token))
		return kars_err_set(err, EPROTO, "the answer has no access_token");
	t = json_string_value(token);
	len = json_string_length(token);
	if (len > KARS_TOKEN_MAX_LEN || strlen(t) != len)
		return kars_err_set(err, EPROTO, "access_token is not a token");
	for (size_t i = 0; i < len; i++)
		if (t[i] <= ' ' || t[i] >= 0x7f)
			return kars_err_set(err, EPROTO,
					    "access_token holds a byte that cannot go in a header");
	if (type && strcasecmp(type, "Bearer"))
		return kars_err_set(err, EPROTO, "token_type is \"%.32s\", not Bearer", type);
	if (json_object_get(body, "expires_in") &&
	    !json_seconds(json_object_get(body, "expires_in"), &n))
		return kars_err_set(err, EPROTO, "expires_in is not a number of seconds");
	if (json_object_get(body, "expires_in")) {
		if (n <= 0 || n > KARS_TOKEN_MAX_LIFE_S)
			return kars_err_set(err, EPROTO, "expires_in %lld is out of range", n);
	} else if (json_object_get(body, "expires_on")) {
		if (!json_seconds(json_object_get(body, "expires_on"), &n))
			return kars_err_set(err, EPROTO, "expires_on is not a time in seconds");
		if (n <= now || n - now > KARS_TOKEN_MAX_LIFE_S)
			return kars_err_set(err, EPROTO,
					    "expires_on %lld is in the past or too far ahead", n);
		n -= now;
	} else {
		return kars_err_set(err, EPROTO,
				    "the answer has neither expires_in nor expires_on");
	}
	*life_ms = n * 1000;
	len += sizeof("Authorization: Bearer ");
	*header = malloc(len);
	if (!*header)
		return kars_err_set(err, ENOMEM, "out of memory");
	snprintf(*header, len, "Authorization: Bearer %s", t);
	explicit_bzero((char *)t, strlen(t));
	return 0;
}

int kars_token_response_parse(long status, const char *body, size_t len, char **header,
			      long long *life_ms, struct kars_err *err)
{
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	char desc[320];
	int ret;

	*header = NULL;
	*life_ms = 0;
	if (status != 200) {
		if (json_is_object(j))
			describe_error(j, desc, sizeof(desc));
		else
			snprintf(desc, sizeof(desc), "no JSON error body");
		ret = kars_err_set(err, EACCES, "HTTP %ld: %s", status, desc);
	} else if (!json_is_object(j)) {
		ret = kars_err_set(err, EPROTO, "HTTP 200 without a JSON object");
	} else {
		ret = take_token(j, header, life_ms, err);
	}
	json_decref(j);
	/* The message goes to logs: one line of visible bytes. */
	if (ret && err)
		for (char *p = err->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	return ret;
}
