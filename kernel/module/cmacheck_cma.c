// SPDX-License-Identifier: GPL-2.0
/*
 * cmacheck_cma: a test-only module for cmacheck kreplay.
 *
 * It lets user space call cma_alloc()/cma_release() on any CMA area, hold
 * arbitrary frames busy with alloc_contig_range(), and call
 * alloc_contig_pages()/free_contig_range(), through one debugfs file:
 *
 *     /sys/kernel/debug/cmacheck/ctl
 *
 * Write one command (a line of text), then read the result (one or more
 * lines of text).  The result of the last command is kept until the next
 * write, so `echo CMD > ctl; cat ctl` works from a shell.  Commands:
 *
 *   info                       -> "ok pageblock_order=B max_order=M areas=N"
 *                                 then one line per area:
 *                                 "area NAME base_pfn=P count=C"
 *   alloc AREA COUNT ALIGN     -> cma_alloc(area, COUNT, ALIGN, true)
 *                                 "ok pfn=P ns=T" | "fail ns=T"
 *   release AREA PFN COUNT     -> checked cma_release: only when [PFN, PFN+COUNT)
 *                                 is exactly one live allocation made by
 *                                 "alloc" through this module.
 *                                 "ok" | "fail reason=notlive" | "fail reason=kernel"
 *   rawrelease AREA PFN COUNT  -> cma_release(area, pfn_to_page(PFN), COUNT) as is,
 *                                 no check (can corrupt the kernel).
 *                                 "ok" | "fail reason=kernel"
 *   hold PFN COUNT [MT]        -> alloc_contig_range(PFN, PFN+COUNT, MT, GFP_KERNEL)
 *                                 with MT = MIGRATE_CMA when the range lies in a
 *                                 CMA area, MIGRATE_MOVABLE when it lies outside all,
 *                                 unless MT (movable, unmovable, reclaimable) is given
 *                                 for a range outside all areas: the isolated
 *                                 pageblocks then come back labelled MT
 *                                 (unset_migratetype_isolate), as a kernel allocation
 *                                 of that type would have claimed them.
 *                                 "ok mt=NAME ns=T" | "fail err=E mt=NAME ns=T"
 *   drop PFN COUNT             -> free_contig_range(PFN, COUNT) of a live hold.
 *                                 "ok" | "fail reason=notlive"
 *   contig COUNT [NID]         -> alloc_contig_pages(COUNT, GFP_KERNEL|__GFP_NOWARN,
 *                                 nid, nodemask): without NID the current node and no
 *                                 nodemask (every zone of the zonelist); with NID only
 *                                 node NID's zones.
 *                                 "ok pfn=P ns=T" | "fail ns=T"
 *   freecontig PFN COUNT       -> free_contig_range() of a live "contig" allocation.
 *                                 "ok" | "fail reason=notlive"
 *   drain                      -> drain_all_pages(NULL): per-CPU free lists back to
 *                                 the buddy allocator.  "ok"
 *   labels PFN COUNT           -> the migratetype of every pageblock that intersects
 *                                 [PFN, PFN+COUNT), one letter each (M movable,
 *                                 U unmovable, R reclaimable, H highatomic, C cma,
 *                                 I isolate, ? other): "ok labels=MMUC..."
 *   node NID                   -> "ok nid=N start_pfn=S end_pfn=E present=P free=F
 *                                 zones=NAME:START-END,..." (END exclusive; only
 *                                 populated zones)
 *   busy PFN COUNT             -> the frames of [PFN, PFN+COUNT) that are not free in
 *                                 the buddy allocator (per-CPU lists drained first):
 *                                 "ok busy=N runs=A-B,C,..." (at most 64 runs listed,
 *                                 then "+")
 *   relabel PFN MT             -> labels PFN's pageblock MT (movable, unmovable,
 *                                 reclaimable) the way alloc_contig_range does: takes one
 *                                 free frame of it with MT as the caller's type (the
 *                                 pageblock is isolated, then labelled MT) and frees the
 *                                 frame again.  For reproducing a claim (a buddy
 *                                 allocation that relabelled a whole free pageblock).
 *                                 "ok" | "fail err=E" | "fail reason=nofree"
 *   bfirst NID ORDER MT PFN COUNT [KEEP] -> (experimental, the buddy allocator) allocates blocks
 *                                 of ORDER and type MT (movable, unmovable, reclaimable)
 *                                 with alloc_pages_node(NID, ...|__GFP_THISNODE) until one
 *                                 lands in [PFN, PFN+COUNT); keeps the others (they are
 *                                 the node's free scraps outside the range, which the free
 *                                 lists hand out first); per-CPU lists drained before and
 *                                 after each call; KEEP=0 frees the block that landed in
 *                                 the range again.  "ok pfn=P outside=N" | "fail outside=N"
 *   buddy NID ORDER MT         -> one block of ORDER and type MT (unmovable, reclaimable,
 *                                 movable) from the buddy allocator of node NID:
 *                                 alloc_pages_node(NID, buddy_gfp(MT), ORDER), per-CPU
 *                                 lists drained before and after, so that the block is the
 *                                 one __rmqueue chose and the per-CPU refill batch is back
 *                                 in the buddy allocator.  "ok pfn=P ns=T" | "fail ns=T"
 *   bfree PFN                  -> __free_pages() of a live "buddy" block, lists drained.
 *                                 "ok" | "fail reason=notlive"
 *   scrub NID PFN COUNT        -> takes every free frame of node NID outside
 *                                 [PFN, PFN+COUNT) (the free scraps in the pageblocks
 *                                 that hold the kernel's own pages, which no fence can
 *                                 hold): [PFN, PFN+COUNT) is held meanwhile, then every
 *                                 order and type is allocated from the node until nothing
 *                                 is left, and the range is given back, a max-order
 *                                 block at a time from the top down (so that the
 *                                 lowest block is first on its list, as at boot).
 *                                 "ok taken=N" | "fail err=E" (the range could not be held)
 *   reset                      -> gives back everything the module holds (cma_alloc
 *                                 allocations with cma_release, holds and contiguous
 *                                 allocations with free_contig_range, buddy blocks), as
 *                                 unloading does; kfuzz runs it between two traces.
 *                                 "ok released=N" | "fail reason=kernel released=N"
 *                                 (cma_release refused an allocation)
 *   fence PFN COUNT            -> makes every frame of [PFN, PFN+COUNT) unusable for
 *                                 alloc_contig_pages: holds each pageblock-sized piece
 *                                 with alloc_contig_range (MIGRATE_MOVABLE) and, where
 *                                 that fails, each frame alone; frames that cannot be
 *                                 held are the kernel's own (reserved or in use) and
 *                                 unusable already.  "ok held=H kernel=K"
 *
 * A malformed command gives "err ...".  Everything still held is given back
 * when the module is unloaded.
 *
 * Needs a kernel whose cma_alloc, cma_release, cma_get_base, cma_get_size,
 * cma_get_name, cma_for_each_area, alloc_contig_pages (6.12: alloc_contig_pages_noprof),
 * drain_all_pages and get_pfnblock_flags_mask are exported (see kernel/exports.list).
 * Builds against Linux 6.1 and 6.12.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/debugfs.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/cma.h>
#include <linux/ktime.h>
#include <linux/mmzone.h>
#include <linux/pageblock-flags.h>
#include <linux/nodemask.h>
#include <linux/vmstat.h>

/* 6.8 renamed MAX_ORDER (then exclusive, 11) to MAX_PAGE_ORDER (inclusive, 10). */
#ifdef MAX_PAGE_ORDER
#define CMACHECK_MAX_ORDER MAX_PAGE_ORDER
#else
#define CMACHECK_MAX_ORDER (MAX_ORDER - 1)
#endif

#define RESULT_MAX 4096

enum held_kind { HELD_CMA, HELD_HOLD, HELD_CONTIG, HELD_PAGES };

struct held {
	struct list_head list;
	enum held_kind kind;
	struct cma *cma;          /* HELD_CMA only */
	unsigned int order;       /* HELD_PAGES only: a buddy block of this order */
	unsigned long pfn;
	unsigned long count;
};

static DEFINE_MUTEX(ctl_lock);
static LIST_HEAD(held_list);
static char result[RESULT_MAX];
static size_t result_len;
static struct dentry *dir;

static void out(const char *fmt, ...)
{
	va_list ap;

	if (result_len >= RESULT_MAX - 1)
		return;
	va_start(ap, fmt);
	result_len += vscnprintf(result + result_len, RESULT_MAX - result_len,
				 fmt, ap);
	va_end(ap);
}

struct find_ctx {
	const char *name;
	struct cma *found;
	int n;
};

static int find_it(struct cma *cma, void *data)
{
	struct find_ctx *c = data;

	if (!strcmp(cma_get_name(cma), c->name)) {
		c->found = cma;
		return 1;
	}
	return 0;
}

static struct cma *find_area(const char *name)
{
	struct find_ctx c = { .name = name };

	cma_for_each_area(find_it, &c);
	return c.found;
}

/* area fully containing [pfn, pfn+count), or NULL; *partial set if it overlaps one */
struct range_ctx {
	unsigned long pfn, count;
	struct cma *inside;
	bool partial;
};

static int range_it(struct cma *cma, void *data)
{
	struct range_ctx *c = data;
	unsigned long b = PHYS_PFN(cma_get_base(cma));
	unsigned long e = b + (cma_get_size(cma) >> PAGE_SHIFT);

	if (c->pfn >= b && c->pfn + c->count <= e)
		c->inside = cma;
	else if (c->pfn < e && c->pfn + c->count > b)
		c->partial = true;
	return 0;
}

static int info_it(struct cma *cma, void *data)
{
	int *n = data;

	(*n)++;
	out("area %s base_pfn=%lu count=%lu\n", cma_get_name(cma),
	    (unsigned long)PHYS_PFN(cma_get_base(cma)),
	    cma_get_size(cma) >> PAGE_SHIFT);
	return 0;
}

static int count_it(struct cma *cma, void *data)
{
	(*(int *)data)++;
	return 0;
}

static struct held *find_held(enum held_kind kind, struct cma *cma,
			      unsigned long pfn, unsigned long count)
{
	struct held *h;

	list_for_each_entry(h, &held_list, list)
		if (h->kind == kind && h->pfn == pfn && h->count == count &&
		    (kind != HELD_CMA || h->cma == cma))
			return h;
	return NULL;
}

static int add_held(enum held_kind kind, struct cma *cma, unsigned long pfn,
		    unsigned long count)
{
	struct held *h = kzalloc(sizeof(*h), GFP_KERNEL);

	if (!h)
		return -ENOMEM;
	h->kind = kind;
	h->cma = cma;
	h->pfn = pfn;
	h->count = count;
	list_add_tail(&h->list, &held_list);
	return 0;
}

/*
 * After a raw release of [pfn, pfn+count) of an area, forget (or trim) what
 * we tracked there so that module unload does not free it a second time.
 */
static void forget_range(struct cma *cma, unsigned long pfn, unsigned long count)
{
	struct held *h, *t;
	unsigned long e = pfn + count;

	list_for_each_entry_safe(h, t, &held_list, list) {
		unsigned long he = h->pfn + h->count;

		if (h->kind != HELD_CMA || h->cma != cma || he <= pfn || h->pfn >= e)
			continue;
		if (h->pfn >= pfn && he <= e) {
			list_del(&h->list);
			kfree(h);
		} else if (h->pfn < pfn && he > e) {
			/* split: keep [h->pfn, pfn) and [e, he) */
			add_held(HELD_CMA, cma, e, he - e);
			h->count = pfn - h->pfn;
		} else if (h->pfn < pfn) {
			h->count = pfn - h->pfn;
		} else {
			h->count = he - e;
			h->pfn = e;
		}
	}
}

static const struct {
	int mt;
	const char *name;
	char letter;
} mt_table[] = {
	{ MIGRATE_UNMOVABLE, "unmovable", 'U' },
	{ MIGRATE_MOVABLE, "movable", 'M' },
	{ MIGRATE_RECLAIMABLE, "reclaimable", 'R' },
	{ MIGRATE_HIGHATOMIC, "highatomic", 'H' },
#ifdef CONFIG_CMA
	{ MIGRATE_CMA, "cma", 'C' },
#endif
#ifdef CONFIG_MEMORY_ISOLATION
	{ MIGRATE_ISOLATE, "isolate", 'I' },
#endif
};

static int mt_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mt_table); i++)
		if (!strcmp(mt_table[i].name, name))
			return mt_table[i].mt;
	return -1;
}

static const char *mt_name(int mt)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mt_table); i++)
		if (mt_table[i].mt == mt)
			return mt_table[i].name;
	return "?";
}

static char mt_letter(int mt)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mt_table); i++)
		if (mt_table[i].mt == mt)
			return mt_table[i].letter;
	return '?';
}

/* "busy": the runs are collected in runs_buf, then printed after the count */
#define BUSY_RUNS_MAX 64
static char runs_buf[RESULT_MAX / 2];
static size_t runs_len;

static void busy_run(int n, unsigned long first, unsigned long last)
{
	if (n == 1)
		runs_len = 0;
	if (n > BUSY_RUNS_MAX)
		return;
	if (first == last)
		runs_len += scnprintf(runs_buf + runs_len, sizeof(runs_buf) - runs_len,
				      "%s%lu", n > 1 ? "," : "", first);
	else
		runs_len += scnprintf(runs_buf + runs_len, sizeof(runs_buf) - runs_len,
				      "%s%lu-%lu", n > 1 ? "," : "", first, last);
}

static void busy_finish(unsigned long nbusy, int runs)
{
	if (!runs)
		runs_len = 0;
	out("ok busy=%lu runs=%.*s%s%s\n", nbusy, (int)runs_len, runs_buf,
	    runs ? "" : "-", runs > BUSY_RUNS_MAX ? ",+" : "");
}

/* whether pfn lies in a free buddy block (as the kernel's is_free_buddy_page) */
static bool frame_is_free(unsigned long pfn)
{
	unsigned int order;

	for (order = 0; order <= CMACHECK_MAX_ORDER; order++) {
		unsigned long head = pfn & ~((1UL << order) - 1);

		if (pfn_valid(head) && PageBuddy(pfn_to_page(head)) &&
		    page_private(pfn_to_page(head)) >= order)
			return true;
	}
	return false;
}

/*
 * The gfp of a "buddy" block of type MT from node NID alone.  __GFP_MEMALLOC: no
 * watermarks (the model has none, and the nearly fenced node is always below them).
 * No __GFP_KSWAPD_RECLAIM: no kswapd (and no watermark boost after a fallback) for the
 * node.  __GFP_DIRECT_RECLAIM stays: without it 6.12 adds ALLOC_HIGHATOMIC to an
 * order > 0 request, and a success then reserves its pageblock as HIGHATOMIC
 * (reserve_highatomic_pageblock), which no trace rule does.
 */
static gfp_t buddy_gfp(int mt)
{
	gfp_t gfp = mt == MIGRATE_MOVABLE ? GFP_HIGHUSER_MOVABLE :
		    mt == MIGRATE_RECLAIMABLE ? GFP_KERNEL | __GFP_RECLAIMABLE : GFP_KERNEL;

	return (gfp & ~__GFP_KSWAPD_RECLAIM) | __GFP_THISNODE | __GFP_NOWARN |
	       __GFP_NORETRY | __GFP_MEMALLOC;
}

static int add_pages(unsigned long pfn, unsigned int order)
{
	if (add_held(HELD_PAGES, NULL, pfn, 1UL << order))
		return -ENOMEM;
	list_last_entry(&held_list, struct held, list)->order = order;
	return 0;
}

/*
 * scrub: every free frame of node nid outside [pfn, pfn+count) is allocated and kept.
 * No reclaim at all here (the last call of each loop fails): the type bits only, so
 * that each type's own lists are emptied before its fallbacks are stolen from.
 */
static long scrub_node(int nid, unsigned long pfn, unsigned long count)
{
	static const int mts[] = { MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE };
	unsigned long taken = 0, round, end;
	int ret, order;
	size_t i;

	ret = alloc_contig_range(pfn, pfn + count, MIGRATE_MOVABLE, GFP_KERNEL | __GFP_NOWARN);
	if (ret)
		return ret;
	do {
		round = 0;
		drain_all_pages(NULL);
		for (order = CMACHECK_MAX_ORDER; order >= 0; order--)
			for (i = 0; i < ARRAY_SIZE(mts); i++)
				for (;;) {
					gfp_t gfp = (buddy_gfp(mts[i]) & ~__GFP_RECLAIM) & ~__GFP_NORETRY;
					struct page *page = alloc_pages_node(nid, gfp, order);

					if (!page)
						break;
					if (add_pages(page_to_pfn(page), order)) {
						__free_pages(page, order);
						break;
					}
					round += 1UL << order;
				}
		taken += round;
	} while (round);
	/*
	 * Give the range back one max-order block at a time, from the top down, draining
	 * after each: a block that merges whole goes to the head of its list, so the lowest
	 * ends up first, as at boot (FPI_TO_TAIL), which the model's fresh machine assumes.
	 */
	end = pfn + count;
	while (end > pfn) {
		unsigned long start = max(pfn, (end - 1) & ~((1UL << CMACHECK_MAX_ORDER) - 1));

		free_contig_range(start, end - start);
		drain_all_pages(NULL);
		end = start;
	}
	return taken;
}

/* gives back everything held; the number given back, and whether cma_release refused one */
static unsigned long release_all(bool *refused)
{
	struct held *h, *t;
	unsigned long n = 0;

	*refused = false;
	list_for_each_entry_safe(h, t, &held_list, list) {
		if (h->kind == HELD_CMA) {
			if (!cma_release(h->cma, pfn_to_page(h->pfn), h->count))
				*refused = true;
		} else if (h->kind == HELD_PAGES) {
			__free_pages(pfn_to_page(h->pfn), h->order);
		} else {
			free_contig_range(h->pfn, h->count);
		}
		list_del(&h->list);
		kfree(h);
		n++;
	}
	return n;
}

static void do_command(char *cmd)
{
	char verb[16], name[64];
	unsigned long a, b;
	unsigned int align;
	struct cma *cma;
	struct held *h;
	ktime_t t0;
	int n, ret;

	result_len = 0;
	result[0] = 0;
	if (sscanf(cmd, "%15s", verb) != 1) {
		out("err empty command\n");
		return;
	}

	if (!strcmp(verb, "info")) {
		n = 0;
		cma_for_each_area(count_it, &n);
		out("ok pageblock_order=%u max_order=%u areas=%d\n",
		    (unsigned int)pageblock_order, (unsigned int)CMACHECK_MAX_ORDER, n);
		cma_for_each_area(info_it, &n);
		return;
	}

	if (!strcmp(verb, "alloc")) {
		struct page *page;

		if (sscanf(cmd, "%*s %63s %lu %u", name, &a, &align) != 3) {
			out("err usage: alloc AREA COUNT ALIGN\n");
			return;
		}
		cma = find_area(name);
		if (!cma) {
			out("err no area %s\n", name);
			return;
		}
		t0 = ktime_get();
		page = cma_alloc(cma, a, align, true);
		t0 = ktime_sub(ktime_get(), t0);
		if (!page) {
			out("fail ns=%lld\n", ktime_to_ns(t0));
			return;
		}
		if (add_held(HELD_CMA, cma, page_to_pfn(page), a)) {
			cma_release(cma, page, a);
			out("err out of memory for bookkeeping\n");
			return;
		}
		out("ok pfn=%lu ns=%lld\n", page_to_pfn(page), ktime_to_ns(t0));
		return;
	}

	if (!strcmp(verb, "release") || !strcmp(verb, "rawrelease")) {
		bool raw = verb[0] == 'r' && verb[1] == 'a';

		if (sscanf(cmd, "%*s %63s %lu %lu", name, &a, &b) != 3) {
			out("err usage: %s AREA PFN COUNT\n", verb);
			return;
		}
		cma = find_area(name);
		if (!cma) {
			out("err no area %s\n", name);
			return;
		}
		if (!raw) {
			h = find_held(HELD_CMA, cma, a, b);
			if (!h) {
				out("fail reason=notlive\n");
				return;
			}
			if (!pfn_valid(a) || !cma_release(cma, pfn_to_page(a), b)) {
				out("fail reason=kernel\n");
				return;
			}
			list_del(&h->list);
			kfree(h);
			out("ok\n");
			return;
		}
		if (!pfn_valid(a) || !cma_release(cma, pfn_to_page(a), b)) {
			out("fail reason=kernel\n");
			return;
		}
		forget_range(cma, a, b);
		out("ok\n");
		return;
	}

	if (!strcmp(verb, "hold")) {
		struct range_ctx rc;
		char mtname[16] = "";
		int mt;

		n = sscanf(cmd, "%*s %lu %lu %15s", &a, &b, mtname);
		if (n < 2 || !b) {
			out("err usage: hold PFN COUNT [MT]\n");
			return;
		}
		rc = (struct range_ctx){ .pfn = a, .count = b };
		cma_for_each_area(range_it, &rc);
		if (rc.partial && !rc.inside) {
			out("err range crosses a CMA area boundary\n");
			return;
		}
		if (!pfn_valid(a) || !pfn_valid(a + b - 1)) {
			out("err invalid pfn\n");
			return;
		}
		mt = rc.inside ? MIGRATE_CMA : MIGRATE_MOVABLE;
		if (mtname[0]) {
			mt = mt_by_name(mtname);
			if (mt < 0 || mt == MIGRATE_CMA || rc.inside) {
				out("err MT must be movable, unmovable or reclaimable, outside every area\n");
				return;
			}
		}
		t0 = ktime_get();
		ret = alloc_contig_range(a, a + b, mt, GFP_KERNEL | __GFP_NOWARN);
		t0 = ktime_sub(ktime_get(), t0);
		if (ret) {
			out("fail err=%d mt=%s ns=%lld\n", ret, mt_name(mt),
			    ktime_to_ns(t0));
			return;
		}
		if (add_held(HELD_HOLD, NULL, a, b)) {
			free_contig_range(a, b);
			out("err out of memory for bookkeeping\n");
			return;
		}
		out("ok mt=%s ns=%lld\n", mt_name(mt), ktime_to_ns(t0));
		return;
	}

	if (!strcmp(verb, "drop") || !strcmp(verb, "freecontig")) {
		enum held_kind kind = verb[0] == 'd' ? HELD_HOLD : HELD_CONTIG;

		if (sscanf(cmd, "%*s %lu %lu", &a, &b) != 2) {
			out("err usage: %s PFN COUNT\n", verb);
			return;
		}
		h = find_held(kind, NULL, a, b);
		if (!h) {
			out("fail reason=notlive\n");
			return;
		}
		free_contig_range(a, b);
		list_del(&h->list);
		kfree(h);
		out("ok\n");
		return;
	}

	if (!strcmp(verb, "contig")) {
		struct page *page;
		nodemask_t nodes = NODE_MASK_NONE;
		int nid = -1;

		n = sscanf(cmd, "%*s %lu %d", &a, &nid);
		if (n < 1 || !a || (n == 2 && (nid < 0 || nid >= MAX_NUMNODES ||
					       !node_online(nid)))) {
			out("err usage: contig COUNT [NID] (NID an online node)\n");
			return;
		}
		if (n == 2)
			node_set(nid, nodes);
		t0 = ktime_get();
		/* with NID: only that node's zones (the nodemask), not the zonelist's fallbacks */
		page = alloc_contig_pages(a, GFP_KERNEL | __GFP_NOWARN,
					  n == 2 ? nid : numa_node_id(),
					  n == 2 ? &nodes : NULL);
		t0 = ktime_sub(ktime_get(), t0);
		if (!page) {
			out("fail ns=%lld\n", ktime_to_ns(t0));
			return;
		}
		if (add_held(HELD_CONTIG, NULL, page_to_pfn(page), a)) {
			free_contig_range(page_to_pfn(page), a);
			out("err out of memory for bookkeeping\n");
			return;
		}
		out("ok pfn=%lu ns=%lld\n", page_to_pfn(page), ktime_to_ns(t0));
		return;
	}

	if (!strcmp(verb, "drain")) {
		drain_all_pages(NULL);
		out("ok\n");
		return;
	}

	if (!strcmp(verb, "labels")) {
		unsigned long pfn, first, last;

		if (sscanf(cmd, "%*s %lu %lu", &a, &b) != 2 || !b) {
			out("err usage: labels PFN COUNT\n");
			return;
		}
		first = ALIGN_DOWN(a, pageblock_nr_pages);
		last = a + b - 1;
		if (!pfn_valid(first) || !pfn_valid(last)) {
			out("err invalid pfn\n");
			return;
		}
		if ((last - first) / pageblock_nr_pages + 1 > RESULT_MAX - 32) {
			out("err too many pageblocks\n");
			return;
		}
		out("ok labels=");
		for (pfn = first; pfn <= last; pfn += pageblock_nr_pages)
			out("%c", pfn_valid(pfn) ? mt_letter(get_pageblock_migratetype(pfn_to_page(pfn))) : '-');
		out("\n");
		return;
	}

	if (!strcmp(verb, "node")) {
		int nid, z;
		pg_data_t *pgdat;
		bool first = true;
		unsigned long free;

		if (sscanf(cmd, "%*s %d", &nid) != 1 || nid < 0 ||
		    nid >= MAX_NUMNODES || !node_online(nid)) {
			out("err usage: node NID (an online node)\n");
			return;
		}
		pgdat = NODE_DATA(nid);
		free = 0;
		for (z = 0; z < MAX_NR_ZONES; z++)
			free += zone_page_state(&pgdat->node_zones[z], NR_FREE_PAGES);
		out("ok nid=%d start_pfn=%lu end_pfn=%lu present=%lu free=%lu nodes=%d zones=",
		    nid, pgdat->node_start_pfn, pgdat_end_pfn(pgdat),
		    pgdat->node_present_pages, free, num_online_nodes());
		for (z = 0; z < MAX_NR_ZONES; z++) {
			struct zone *zone = &pgdat->node_zones[z];

			if (!populated_zone(zone))
				continue;
			out("%s%s:%lu-%lu", first ? "" : ",", zone->name,
			    zone->zone_start_pfn, zone_end_pfn(zone));
			first = false;
		}
		out("%s\n", first ? "-" : "");
		return;
	}

	if (!strcmp(verb, "busy")) {
		unsigned long pfn, e, run = 0, nbusy = 0;
		int runs = 0;
		bool in_run = false;

		if (sscanf(cmd, "%*s %lu %lu", &a, &b) != 2 || !b) {
			out("err usage: busy PFN COUNT\n");
			return;
		}
		drain_all_pages(NULL);
		e = a + b;
		for (pfn = a; pfn < e;) {
			struct page *page = pfn_valid(pfn) ? pfn_to_page(pfn) : NULL;
			unsigned long step = 1;
			bool free = false;

			if (page && PageBuddy(page)) {
				/* the order of a free buddy block (mm/internal.h buddy_order) */
				step = 1UL << page_private(page);
				free = true;
			}
			if (!free) {
				nbusy++;
				if (!in_run)
					run = pfn;
				in_run = true;
			} else if (in_run) {
				runs++;
				busy_run(runs, run, pfn - 1);
				in_run = false;
			}
			pfn += step;
		}
		if (in_run)
			busy_run(++runs, run, e - 1);
		busy_finish(nbusy, runs);
		return;
	}

	if (!strcmp(verb, "relabel")) {
		unsigned long pfn, first;
		char mtname[16];
		int mt;

		if (sscanf(cmd, "%*s %lu %15s", &a, mtname) != 2 ||
		    (mt = mt_by_name(mtname)) < 0 || mt == MIGRATE_CMA) {
			out("err usage: relabel PFN movable|unmovable|reclaimable\n");
			return;
		}
		first = ALIGN_DOWN(a, pageblock_nr_pages);
		if (!pfn_valid(first) || !pfn_valid(first + pageblock_nr_pages - 1)) {
			out("err invalid pfn\n");
			return;
		}
		drain_all_pages(NULL);
		for (pfn = first; pfn < first + pageblock_nr_pages; pfn++)
			if (frame_is_free(pfn))
				break;
		if (pfn == first + pageblock_nr_pages) {
			out("fail reason=nofree\n");
			return;
		}
		ret = alloc_contig_range(pfn, pfn + 1, mt, GFP_KERNEL | __GFP_NOWARN);
		if (ret) {
			out("fail err=%d\n", ret);
			return;
		}
		free_contig_range(pfn, 1);
		out("ok\n");
		return;
	}

	if (!strcmp(verb, "bfirst")) {
		unsigned long outside = 0;
		unsigned int order;
		char mtname[16];
		int nid, mt;
		gfp_t gfp;

		int keep = 1;

		if (sscanf(cmd, "%*s %d %u %15s %lu %lu %d", &nid, &order, mtname, &a, &b, &keep) < 5 ||
		    nid < 0 || nid >= MAX_NUMNODES || !node_online(nid) ||
		    order > CMACHECK_MAX_ORDER || (mt = mt_by_name(mtname)) < 0 || mt == MIGRATE_CMA) {
			out("err usage: bfirst NID ORDER movable|unmovable|reclaimable PFN COUNT\n");
			return;
		}
		gfp = (mt == MIGRATE_MOVABLE ? GFP_HIGHUSER_MOVABLE :
		       mt == MIGRATE_RECLAIMABLE ? GFP_KERNEL | __GFP_RECLAIMABLE : GFP_KERNEL) |
		      __GFP_THISNODE | __GFP_NOWARN | __GFP_NORETRY |
		      /* no watermarks: the model has none, and the node is nearly all fenced */
		      __GFP_MEMALLOC;
		for (;;) {
			struct page *page;
			unsigned long pfn;

			drain_all_pages(NULL);
			page = alloc_pages_node(nid, gfp, order);
			drain_all_pages(NULL);
			if (!page) {
				out("fail outside=%lu\n", outside);
				return;
			}
			pfn = page_to_pfn(page);
			if (add_held(HELD_PAGES, NULL, pfn, 1UL << order)) {
				__free_pages(page, order);
				out("err out of memory for bookkeeping\n");
				return;
			}
			list_last_entry(&held_list, struct held, list)->order = order;
			if (pfn >= a && pfn < a + b) {
				if (!keep) {
					struct held *h = list_last_entry(&held_list, struct held, list);

					list_del(&h->list);
					kfree(h);
					__free_pages(page, order);
					drain_all_pages(NULL);
				}
				out("ok pfn=%lu outside=%lu\n", pfn, outside);
				return;
			}
			outside++;
		}
	}

	if (!strcmp(verb, "buddy")) {
		struct page *page;
		unsigned int order;
		char mtname[16];
		int nid, mt;

		if (sscanf(cmd, "%*s %d %u %15s", &nid, &order, mtname) != 3 ||
		    nid < 0 || nid >= MAX_NUMNODES || !node_online(nid) ||
		    order > CMACHECK_MAX_ORDER || (mt = mt_by_name(mtname)) < 0 || mt == MIGRATE_CMA ||
		    mt == MIGRATE_HIGHATOMIC) {
			out("err usage: buddy NID ORDER movable|unmovable|reclaimable\n");
			return;
		}
		drain_all_pages(NULL);
		t0 = ktime_get();
		page = alloc_pages_node(nid, buddy_gfp(mt), order);
		t0 = ktime_sub(ktime_get(), t0);
		/* the rest of a per-CPU refill batch (orders <= 3) back to the buddy allocator */
		drain_all_pages(NULL);
		if (!page) {
			out("fail ns=%lld\n", ktime_to_ns(t0));
			return;
		}
		if (add_pages(page_to_pfn(page), order)) {
			__free_pages(page, order);
			drain_all_pages(NULL);
			out("err out of memory for bookkeeping\n");
			return;
		}
		out("ok pfn=%lu ns=%lld\n", page_to_pfn(page), ktime_to_ns(t0));
		return;
	}

	if (!strcmp(verb, "bfree")) {
		if (sscanf(cmd, "%*s %lu", &a) != 1) {
			out("err usage: bfree PFN\n");
			return;
		}
		list_for_each_entry(h, &held_list, list)
			if (h->kind == HELD_PAGES && h->pfn == a)
				break;
		if (list_entry_is_head(h, &held_list, list)) {
			out("fail reason=notlive\n");
			return;
		}
		__free_pages(pfn_to_page(h->pfn), h->order);
		list_del(&h->list);
		kfree(h);
		/* a block of order <= 3 waits on a per-CPU list until drained */
		drain_all_pages(NULL);
		out("ok\n");
		return;
	}

	if (!strcmp(verb, "scrub")) {
		long taken;
		int nid;

		if (sscanf(cmd, "%*s %d %lu %lu", &nid, &a, &b) != 3 || !b || nid < 0 ||
		    nid >= MAX_NUMNODES || !node_online(nid) || !pfn_valid(a) || !pfn_valid(a + b - 1)) {
			out("err usage: scrub NID PFN COUNT\n");
			return;
		}
		taken = scrub_node(nid, a, b);
		if (taken < 0)
			out("fail err=%ld\n", taken);
		else
			out("ok taken=%ld\n", taken);
		return;
	}

	if (!strcmp(verb, "reset")) {
		bool refused;
		unsigned long n = release_all(&refused);

		out("%s released=%lu\n", refused ? "fail reason=kernel" : "ok", n);
		return;
	}

	if (!strcmp(verb, "fence")) {
		unsigned long pfn, e, held = 0, kernel = 0;

		if (sscanf(cmd, "%*s %lu %lu", &a, &b) != 2 || !b) {
			out("err usage: fence PFN COUNT\n");
			return;
		}
		e = a + b;
		for (pfn = a; pfn < e;) {
			unsigned long pe = min(ALIGN(pfn + 1, pageblock_nr_pages), e), q;

			if (pfn_valid(pfn) && pfn_valid(pe - 1) &&
			    !alloc_contig_range(pfn, pe, MIGRATE_MOVABLE, GFP_KERNEL | __GFP_NOWARN) &&
			    !add_held(HELD_HOLD, NULL, pfn, pe - pfn)) {
				held += pe - pfn;
			} else {
				for (q = pfn; q < pe; q++) {
					if (pfn_valid(q) &&
					    !alloc_contig_range(q, q + 1, MIGRATE_MOVABLE, GFP_KERNEL | __GFP_NOWARN)) {
						if (add_held(HELD_HOLD, NULL, q, 1)) {
							free_contig_range(q, 1);
							kernel++;
						} else {
							held++;
						}
					} else {
						kernel++;
					}
				}
			}
			pfn = pe;
		}
		out("ok held=%lu kernel=%lu\n", held, kernel);
		return;
	}

	out("err unknown command %s\n", verb);
}

static ssize_t ctl_write(struct file *file, const char __user *ubuf,
			 size_t len, loff_t *ppos)
{
	char buf[256];
	size_t n = min(len, sizeof(buf) - 1);

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	buf[n] = 0;
	mutex_lock(&ctl_lock);
	do_command(buf);
	mutex_unlock(&ctl_lock);
	*ppos = 0;
	return len;
}

static ssize_t ctl_read(struct file *file, char __user *ubuf, size_t len,
			loff_t *ppos)
{
	ssize_t r;

	mutex_lock(&ctl_lock);
	r = simple_read_from_buffer(ubuf, len, ppos, result, result_len);
	mutex_unlock(&ctl_lock);
	return r;
}

static const struct file_operations ctl_fops = {
	.owner = THIS_MODULE,
	.read = ctl_read,
	.write = ctl_write,
	.llseek = default_llseek,
};

static int __init cmacheck_init(void)
{
	dir = debugfs_create_dir("cmacheck", NULL);
	debugfs_create_file("ctl", 0600, dir, NULL, &ctl_fops);
	pr_info("cmacheck_cma: loaded\n");
	return 0;
}

static void __exit cmacheck_exit(void)
{
	bool refused;

	debugfs_remove_recursive(dir);
	release_all(&refused);
}

module_init(cmacheck_init);
module_exit(cmacheck_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cmacheck: drive cma_alloc/cma_release and alloc_contig_range from user space (test only)");
