/* store_fixture.h - the temporary local store the controller and reconciler
 * tests share (test_controller.c, test_reconcile_*.c): one directory per
 * test, /tmp/kars-<tag>-XXXXXX, with the store under state/ and compiled
 * policies under out/, removed afterwards; MUST() to fail a test with the
 * store's error; creating objects from JSON text or a json_t.
 *
 * Include it after unit.h, in one test file of one binary (its state is
 * static).
 */
#ifndef KARS_STORE_FIXTURE_H
#define KARS_STORE_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"

static struct {
	char dir[64];	/* the test's directory */
	char state[96]; /* dir/state: kars_store_open_dir() */
	char out[96];	/* dir/out: where reconcilers deliver */
} fx;

/* Fails the running test with call's text and err.msg (a struct kars_err
 * named err must be in scope). */
#define MUST(call)                                                                                 \
	do {                                                                                       \
		if ((call))                                                                        \
			fail_msg("%s failed: %s", #call, err.msg);                                 \
	} while (0)

/* For a cmocka setup: a fresh fx.dir named after tag. 0, or -1. */
static inline int fx_setup(const char *tag)
{
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/kars-%s-XXXXXX", tag);
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.state, sizeof(fx.state), "%s/state", fx.dir);
	snprintf(fx.out, sizeof(fx.out), "%s/out", fx.dir);
	return 0;
}

/* For a cmocka teardown: fx.dir and all below it removed. */
static inline int fx_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd);
}

/* Creates in (consumed) in s; the stored object (defaults, metadata). */
static inline json_t *fx_create(struct kars_store *s, json_t *in)
{
	struct kars_err err = {0};
	json_t *out = NULL;

	assert_non_null(in);
	MUST(kars_store_create(s, in, &out, &err));
	json_decref(in);
	return out;
}

/* The same from JSON text. */
static inline json_t *fx_create_text(struct kars_store *s, const char *text)
{
	return fx_create(s, json_loads(text, 0, NULL));
}

#endif
