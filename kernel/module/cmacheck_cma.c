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
 *   hold PFN COUNT             -> alloc_contig_range(PFN, PFN+COUNT, MT, GFP_KERNEL)
 *                                 with MT = MIGRATE_CMA when the range lies in a
 *                                 CMA area, MIGRATE_MOVABLE when it lies outside all.
 *                                 "ok mt=cma|movable ns=T" | "fail err=E mt=.. ns=T"
 *   drop PFN COUNT             -> free_contig_range(PFN, COUNT) of a live hold.
 *                                 "ok" | "fail reason=notlive"
 *   contig COUNT               -> alloc_contig_pages(COUNT, GFP_KERNEL|__GFP_NOWARN,
 *                                 node of the first area or 0, NULL)
 *                                 "ok pfn=P ns=T" | "fail ns=T"
 *   freecontig PFN COUNT       -> free_contig_range() of a live "contig" allocation.
 *                                 "ok" | "fail reason=notlive"
 *   drain                      -> drain_all_pages(NULL): per-CPU free lists back to
 *                                 the buddy allocator.  "ok"
 *
 * A malformed command gives "err ...".  Everything still held is given back
 * when the module is unloaded.
 *
 * Needs a kernel whose cma_alloc, cma_release, cma_get_base, cma_get_size,
 * cma_get_name, cma_for_each_area, alloc_contig_pages and drain_all_pages are exported
 * (see kernel/exports.list).
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

#define RESULT_MAX 4096

enum held_kind { HELD_CMA, HELD_HOLD, HELD_CONTIG };

struct held {
	struct list_head list;
	enum held_kind kind;
	struct cma *cma;          /* HELD_CMA only */
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
		    (unsigned int)pageblock_order, (unsigned int)(MAX_ORDER - 1), n);
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
		unsigned int mt;

		if (sscanf(cmd, "%*s %lu %lu", &a, &b) != 2 || !b) {
			out("err usage: hold PFN COUNT\n");
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
		t0 = ktime_get();
		ret = alloc_contig_range(a, a + b, mt, GFP_KERNEL | __GFP_NOWARN);
		t0 = ktime_sub(ktime_get(), t0);
		if (ret) {
			out("fail err=%d mt=%s ns=%lld\n", ret,
			    rc.inside ? "cma" : "movable", ktime_to_ns(t0));
			return;
		}
		if (add_held(HELD_HOLD, NULL, a, b)) {
			free_contig_range(a, b);
			out("err out of memory for bookkeeping\n");
			return;
		}
		out("ok mt=%s ns=%lld\n", rc.inside ? "cma" : "movable",
		    ktime_to_ns(t0));
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

		if (sscanf(cmd, "%*s %lu", &a) != 1 || !a) {
			out("err usage: contig COUNT\n");
			return;
		}
		t0 = ktime_get();
		page = alloc_contig_pages(a, GFP_KERNEL | __GFP_NOWARN,
					  numa_node_id(), NULL);
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
	struct held *h, *t;

	debugfs_remove_recursive(dir);
	list_for_each_entry_safe(h, t, &held_list, list) {
		if (h->kind == HELD_CMA)
			cma_release(h->cma, pfn_to_page(h->pfn), h->count);
		else
			free_contig_range(h->pfn, h->count);
		list_del(&h->list);
		kfree(h);
	}
}

module_init(cmacheck_init);
module_exit(cmacheck_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cmacheck: drive cma_alloc/cma_release and alloc_contig_range from user space (test only)");
