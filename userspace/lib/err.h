/* err.h - the kars error convention.
 *
 * Like libbpf 1.0: functions return 0 or a negative errno. Where a human needs
 * to know *what* was wrong (a field, a byte offset, a file:line), the caller
 * passes a struct kars_err and the callee writes one sentence into it.
 */
#ifndef KARS_ERR_H
#define KARS_ERR_H

#include <stddef.h>

struct kars_err {
	int code;      /* positive errno of the first error */
	char msg[512]; /* one sentence naming what was wrong */
};

/* Records the first error only (later ones are usually consequences) and
 * returns -code so callers can write `return kars_err_set(err, EINVAL, ...)`.
 * err may be NULL. */
int kars_err_set(struct kars_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void kars_err_clear(struct kars_err *err);

#endif
