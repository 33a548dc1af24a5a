// SPDX-License-Identifier: MIT
/*
 * A small least-recently-used cache of cluster-sized tables, used for L2
 * tables and refcount blocks. It only keeps slots: loading, writing back
 * and the order between the two caches belong to the callers, which know
 * what a dirty table depends on.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2-internal.h"

int qcow2_cache_init(struct qcow2_cache *c, uint64_t budget, uint64_t table_size)
{
	uint64_t n = MAX(budget / table_size, (uint64_t)QCOW2_CACHE_MIN);

	c->slots = calloc(n, sizeof(*c->slots));
	if (!c->slots)
		return -ENOMEM;
	c->nr_slots = (unsigned)n;
	c->clock = 0;
	for (unsigned i = 0; i < c->nr_slots; i++) {
		/* Tables are written with plain pwrite, so no alignment needs. */
		c->slots[i].data = malloc(table_size);
		if (!c->slots[i].data) {
			qcow2_cache_destroy(c);
			return -ENOMEM;
		}
	}
	return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
	if (!c->slots)
		return;
	for (unsigned i = 0; i < c->nr_slots; i++)
		free(c->slots[i].data);
	free(c->slots);
	c->slots = NULL;
	c->nr_slots = 0;
}

struct qcow2_table *qcow2_cache_find(struct qcow2_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->nr_slots; i++) {
		if (c->slots[i].offset == offset) {
			qcow2_cache_touch(c, &c->slots[i]);
			return &c->slots[i];
		}
	}
	return NULL;
}

struct qcow2_table *qcow2_cache_victim(struct qcow2_cache *c)
{
	struct qcow2_table *best = &c->slots[0];

	for (unsigned i = 0; i < c->nr_slots; i++) {
		if (c->slots[i].offset == 0)
			return &c->slots[i];
		if (c->slots[i].last_use < best->last_use)
			best = &c->slots[i];
	}
	return best;
}

void qcow2_cache_touch(struct qcow2_cache *c, struct qcow2_table *t)
{
	t->last_use = ++c->clock;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->nr_slots; i++) {
		if (c->slots[i].offset == offset) {
			c->slots[i].offset = 0;
			c->slots[i].dirty = false;
		}
	}
}

bool qcow2_cache_any_dirty(const struct qcow2_cache *c)
{
	for (unsigned i = 0; i < c->nr_slots; i++)
		if (c->slots[i].offset && c->slots[i].dirty)
			return true;
	return false;
}
