/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int kars_err_set(struct kars_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code < 0)
		code = -code;
	if (err && !err->code) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void kars_err_clear(struct kars_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
