/* fuzz_http_request.c - libFuzzer target for the request parser of
 * kars-router's agent-facing HTTP/1.1 server (userspace/router/http_request.c).
 *
 * The agent's request head and body are untrusted. The input is fed as the
 * server feeds it: the head scanner sees the bytes in two pieces (split
 * where the first input byte says, so that every scanner state can be cut),
 * a whole head is parsed, and what follows it is decoded as a chunked body,
 * again in two pieces. Whatever the bytes: no crash, leak or read past the
 * input; a head is never longer than the limit; a refusal has a 4xx/5xx
 * status; parsed offsets lie inside the head; the decoded body is never
 * longer than its raw bytes nor than the limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 2048
#define MAX_BODY 4096

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "check failed: %s\n", #cond);                              \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_http_chunked c = {0};
	struct kars_http_head h;
	struct kars_err err = {0};
	size_t split, scan = 0, body_len;
	int status = 0, rc;
	char *buf;

	if (size < 2)
		return 0;
	split = data[0] % (size - 1);
	data++;
	size--;
	/* An exact-size copy: ASan sees any read past the end. */
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	rc = kars_http_scan_head(buf, split, &scan, MAX_HEAD, &status, &err);
	if (rc == 0)
		rc = kars_http_scan_head(buf, size, &scan, MAX_HEAD, &status, &err);
	if (rc < 0)
		CHECK(status == 400 || status == 431);
	if (rc != 1)
		goto out;
	CHECK(scan <= MAX_HEAD && scan <= size);
	kars_err_clear(&err);
	if (kars_http_parse_head(buf, scan, &h, &status, &err)) {
		CHECK(status >= 400 && status < 600);
		goto out;
	}
	CHECK(h.path < scan && h.query < scan && h.n_fields <= KARS_HTTP_MAX_FIELDS);
	CHECK(buf[h.path] == '/');
	for (size_t i = 0; i < h.n_fields; i++) {
		CHECK(h.fields[i].name < scan && h.fields[i].value < scan);
		CHECK(strlen(buf + h.fields[i].value) < scan);
	}
	(void)kars_http_head_field(buf, &h, "content-type");
	body_len = size - scan;
	rc = kars_http_chunked_feed(&c, buf + scan, body_len / 2, MAX_BODY, &status, &err);
	if (rc == 0)
		rc = kars_http_chunked_feed(&c, buf + scan, body_len, MAX_BODY, &status, &err);
	if (rc < 0)
		CHECK(status == 400 || status == 413);
	CHECK(c.out <= c.raw && c.raw <= body_len && c.out <= MAX_BODY);
out:
	free(buf);
	return 0;
}
