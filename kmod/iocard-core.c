// SPDX-License-Identifier: GPL-2.0
/*
 * iocard: digital I/O cards as gpiochips - core.
 *
 * The gpio_chip, the irq_chip, the software change-of-state scanner, the
 * sysfs class "iocard" and the lifetime of a card: a library for the bus
 * glue (iocard-pci.c, iocard-sim.c), which it never calls; the module's
 * init (iocard-main.c) brings them together. The board's register model
 * (struct iocard_model, iocard-boards.c) says how to drive its registers.
 * Bus glue supplies register accessors and calls, in this order:
 *
 *   iocard_alloc()        layout from the board table, card number
 *   iocard_publish()      class device, parent of the gpiochip
 *   iocard_add_gpiochip() start state, gpiochip with its irqchip, quiesce step
 *   (bus interrupt)       devm_request_irq() or nothing
 *   iocard_start()        events may flow
 *
 * Everything is devm-managed, so removal runs backwards: card quiesced (no
 * interrupt raised any more, scanner stopped, bus interrupt drained), bus
 * interrupt freed, gpiochip removed, safe state applied, class device
 * gone, registers unmapped.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/ctype.h>
#include <linux/device.h>
#include <linux/gpio/driver.h>
#include <linux/hrtimer.h>
#include <linux/idr.h>
#include <linux/irq.h>
#include <linux/irqdesc.h>
#include <linux/irqdomain.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/property.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "iocard.h"
#include "iocard-compat.h"

/* Chatter guard of hardware COS: a rate, counted over windows of 100 ms. */
#define IOCARD_COS_RATE_DEFAULT	5000
#define IOCARD_COS_RATE_MIN	10
#define IOCARD_COS_RATE_MAX	1000000
#define IOCARD_COS_WINDOW_MS	100

static unsigned int iocard_default_scan_us = IOCARD_SCAN_DEFAULT_US;
module_param_named(scan_period_us, iocard_default_scan_us, uint, 0444);
MODULE_PARM_DESC(scan_period_us,
		 "Default software scan period in us for cards without COS interrupt (100..1000000, default 1000)");

static unsigned int iocard_cos_max_rate = IOCARD_COS_RATE_DEFAULT;
module_param_named(cos_max_rate, iocard_cos_max_rate, uint, 0444);
MODULE_PARM_DESC(cos_max_rate,
		 "Initial cos_max_rate of each card: changes per second above which a line's hardware COS interrupt is turned off as chattering (0 = never, else 10..1000000, default 5000)");

static DEFINE_IDA(iocard_ida);
/* Frees cards whose last reference went in a context that cannot. */
static struct workqueue_struct *iocard_wq;

/*
 * Not gpiochip_get_data(): that one fails once the chip is removed, and
 * the card outlives its chip by a few devm steps.
 */
static inline struct iocard *iocard_from_gc(struct gpio_chip *gc)
{
	return container_of(gc, struct iocard, gc);
}

static inline struct iocard_port *iocard_line_port(struct iocard *card,
						   unsigned int offset)
{
	return &card->ports[card->line_port[offset]];
}

static u32 iocard_port_mask(const struct iocard_port *port)
{
	return GENMASK(port->width - 1, 0);
}

/* Lines of @port as bits 0..width-1, from the register value @reg. */
static u32 iocard_port_bits(const struct iocard_port *port, u32 reg)
{
	return (reg >> port->shift) & iocard_port_mask(port);
}

/* Lock held. Update the shadow of @port's register, no bus access. */
static void iocard_port_shadow(struct iocard *card,
			       const struct iocard_port *port, u32 mask,
			       u32 val)
{
	u32 *shadow = &card->shadow[port->reg];

	mask = (mask & iocard_port_mask(port)) << port->shift;
	*shadow = (*shadow & ~mask) | ((val << port->shift) & mask);
}

/* --- gpio_chip ---------------------------------------------------------- */

static int iocard_gpio_request(struct gpio_chip *gc, unsigned int offset)
{
	struct iocard *card = iocard_from_gc(gc);
	unsigned long flags;
	int ret = 0;

	raw_spin_lock_irqsave(&card->lock, flags);
	if (card->closing)
		ret = -ENODEV;
	else
		__set_bit(offset, card->requested);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return ret;
}

static void iocard_gpio_free(struct gpio_chip *gc, unsigned int offset)
{
	struct iocard *card = iocard_from_gc(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	__clear_bit(offset, card->requested);
	/*
	 * A release racing with the chip's removal: iocard_chip_removed()
	 * counted this line as one whose module reference gpiolib keeps,
	 * but gpiolib drops it after all.
	 */
	if (card->orphaned)
		__module_get(THIS_MODULE);
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

static int iocard_gpio_get_direction(struct gpio_chip *gc,
				     unsigned int offset)
{
	struct iocard *card = iocard_from_gc(gc);

	return READ_ONCE(iocard_line_port(card, offset)->out) ?
		GPIO_LINE_DIRECTION_OUT : GPIO_LINE_DIRECTION_IN;
}

/*
 * A port changes direction as a whole. Refuse when another of its lines is
 * in use (requested or used as an interrupt): that line would silently
 * change direction under its user.
 */
static int iocard_port_set_dir(struct iocard *card, unsigned int offset,
			       bool out)
{
	struct iocard_port *port = iocard_line_port(card, offset);
	unsigned int pidx = card->line_port[offset];
	unsigned int i;

	if (port->out == out)
		return 0;
	if (port->locked)
		return -EPERM;
	for (i = port->first; i < port->first + port->width; i++) {
		if (i == offset)
			continue;
		if (test_bit(i, card->requested) ||
		    test_bit(i, card->irq_used))
			return -EBUSY;
	}
	card->board->model->set_port_dir(card, pidx, out);
	return 0;
}

static int iocard_gpio_direction_input(struct gpio_chip *gc,
				       unsigned int offset)
{
	struct iocard *card = iocard_from_gc(gc);
	struct iocard_port *port = iocard_line_port(card, offset);
	unsigned long flags;
	int ret;

	if (!(port->caps & IOCARD_IN))
		return -EPERM;
	raw_spin_lock_irqsave(&card->lock, flags);
	ret = iocard_port_set_dir(card, offset, false);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return ret;
}

static int iocard_gpio_direction_output(struct gpio_chip *gc,
					unsigned int offset, int value)
{
	struct iocard *card = iocard_from_gc(gc);
	struct iocard_port *port = iocard_line_port(card, offset);
	u32 bit = BIT(offset - port->first);
	unsigned long flags;
	int ret = 0;

	if (!(port->caps & IOCARD_OUT))
		return -EPERM;
	raw_spin_lock_irqsave(&card->lock, flags);
	if (port->out) {
		iocard_port_shadow(card, port, bit, value ? bit : 0);
		iocard_write(card, port->reg, card->shadow[port->reg]);
	} else {
		/* Switching writes the latches, the new value included. */
		u32 old = card->shadow[port->reg];

		iocard_port_shadow(card, port, bit, value ? bit : 0);
		ret = iocard_port_set_dir(card, offset, true);
		if (ret)
			card->shadow[port->reg] = old;
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return ret;
}

static int iocard_gpio_get(struct gpio_chip *gc, unsigned int offset)
{
	struct iocard *card = iocard_from_gc(gc);
	struct iocard_port *port = iocard_line_port(card, offset);
	unsigned long flags;
	u32 val;

	raw_spin_lock_irqsave(&card->lock, flags);
	val = iocard_port_bits(port, iocard_read(card, port->reg));
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return !!(val & BIT(offset - port->first));
}

/* One register read per register, whatever the number of ports in it. */
static int iocard_gpio_get_multiple(struct gpio_chip *gc, unsigned long *mask,
				    unsigned long *bits)
{
	struct iocard *card = iocard_from_gc(gc);
	u32 regval[IOCARD_REG_SPACE];
	DECLARE_BITMAP(have, IOCARD_REG_SPACE);
	unsigned long flags;
	unsigned int p, i;

	bitmap_zero(have, IOCARD_REG_SPACE);
	raw_spin_lock_irqsave(&card->lock, flags);
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];
		u32 want = iocard_map_get(mask, port->first, port->width);
		u32 val;

		if (!want)
			continue;
		if (!test_bit(port->reg, have)) {
			regval[port->reg] = iocard_read(card, port->reg);
			__set_bit(port->reg, have);
		}
		val = iocard_port_bits(port, regval[port->reg]);
		for (i = 0; i < port->width; i++)
			if (want & BIT(i))
				__assign_bit(port->first + i, bits,
					     val & BIT(i));
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return 0;
}

/* One register write per register touched. Also used after the chip is gone. */
static void iocard_set_lines(struct iocard *card, const unsigned long *mask,
			     const unsigned long *bits)
{
	DECLARE_BITMAP(dirty, IOCARD_REG_SPACE);
	unsigned long flags;
	unsigned int p, reg;

	bitmap_zero(dirty, IOCARD_REG_SPACE);
	raw_spin_lock_irqsave(&card->lock, flags);
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];
		u32 want = iocard_map_get(mask, port->first, port->width);

		if (!want || !port->out)
			continue;
		iocard_port_shadow(card, port, want,
				   iocard_map_get(bits, port->first,
						  port->width));
		__set_bit(port->reg, dirty);
	}
	for_each_set_bit(reg, dirty, IOCARD_REG_SPACE)
		iocard_write(card, reg, card->shadow[reg]);
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

static void iocard_gpio_set_multiple(struct gpio_chip *gc, unsigned long *mask,
				     unsigned long *bits)
{
	iocard_set_lines(iocard_from_gc(gc), mask, bits);
}

static void iocard_gpio_set(struct gpio_chip *gc, unsigned int offset,
			    int value)
{
	DECLARE_BITMAP(mask, IOCARD_MAX_LINES) = { };
	DECLARE_BITMAP(bits, IOCARD_MAX_LINES) = { };

	__set_bit(offset, mask);
	__assign_bit(offset, bits, value);
	iocard_gpio_set_multiple(gc, mask, bits);
}

/* --- change of state: irq_chip, scanner, hardware COS ------------------- */

/* Lock held. Start the scanner if a line wants events and it is idle. */
static void iocard_scan_kick(struct iocard *card)
{
	if (card->scan_active || card->dying ||
	    bitmap_empty(card->irq_enabled, card->gc.ngpio))
		return;
	card->scan_active = true;
	hrtimer_start(&card->scan_timer, card->scan_period,
		      HRTIMER_MODE_REL_HARD);
}

/*
 * Every change of an input that its user asked for becomes an event or is
 * counted in &iocard.lost, which user space reads (and polls) in the sysfs
 * attribute "lost". Changes are lost in two places, both counted here:
 *
 * - Between two reads of the board: several changes of a line are one
 *   status bit, or one level seen by the scanner. Cards with change
 *   counters (&iocard_ops.changes, the PCI test board's model) say how
 *   many; a latch or a level alone says "at least one", and the rest is
 *   not known (documented in ABI.md).
 * - In gpiolib: its edge detector takes the timestamp in the hard handler
 *   and makes the event in an irq thread; a second interrupt before that
 *   thread has run would be folded into the same event, and nothing would
 *   show it. The lines use handle_level_irq, so that the line stays masked
 *   while its IRQF_ONESHOT thread is pending; iocard raises a line only
 *   when it is not masked (&iocard.irq_busy), keeps the changes that come
 *   meanwhile in &iocard.pend, and raises them as one event when the line
 *   is unmasked (iocard_reraise()), counting the others as lost. Such an
 *   event carries the time it was raised, not the time of the change.
 */

/*
 * Of @changes changes of @line that ended at @level, the edges its user
 * asked for: they alternate, so the last one went to @level.
 */
u32 iocard_edges_of(struct iocard *card, unsigned int line, u32 changes,
		    bool level)
{
	u32 to_level = (changes + 1) / 2;
	u32 rising = level ? to_level : changes - to_level;

	return (test_bit(line, card->irq_rise) ? rising : 0) +
	       (test_bit(line, card->irq_fall) ? changes - rising : 0);
}

/*
 * Lock held. @n changes of @line that its user asked for were seen. Returns
 * true when the caller is to raise the line's interrupt (once the lock is
 * dropped); sets *@notify when a loss was counted.
 */
static bool iocard_line_changed(struct iocard *card, unsigned int line,
				u64 n, bool *notify)
{
	if (!n || !test_bit(line, card->irq_enabled))
		return false;
	if (test_bit(line, card->irq_busy)) {
		card->pend[line] += n;
		return false;
	}
	if (n > 1) {
		card->lost[line] += n - 1;
		*notify = true;
	}
	__set_bit(line, card->irq_busy);
	return true;
}

/* Raise the interrupts of @fire; the lock is not held. */
static void iocard_fire(struct iocard *card, const unsigned long *fire,
			bool notify)
{
	unsigned int line;

	for_each_set_bit(line, fire, card->gc.ngpio)
		generic_handle_domain_irq_safe(card->domain, line);
	if (notify)
		irq_work_queue(&card->notify_work);
}

/* Hard irq context: the lines whose changes waited, now that they may. */
static void iocard_reraise(struct irq_work *work)
{
	struct iocard *card = container_of(work, struct iocard, reraise_work);
	DECLARE_BITMAP(fire, IOCARD_MAX_LINES);
	bool notify = false;
	unsigned long flags;
	unsigned int line;
	u64 n;

	bitmap_zero(fire, IOCARD_MAX_LINES);
	raw_spin_lock_irqsave(&card->lock, flags);
	for (line = 0; line < card->gc.ngpio && !card->dying; line++) {
		if (!card->pend[line] || test_bit(line, card->irq_busy))
			continue;
		n = card->pend[line];
		card->pend[line] = 0;
		if (iocard_line_changed(card, line, n, &notify))
			__set_bit(line, fire);
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	iocard_fire(card, fire, notify);
}

static void iocard_lost_notify(struct irq_work *work)
{
	struct iocard *card = container_of(work, struct iocard, notify_work);
	struct kernfs_node *kn;
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	kn = card->lost_kn;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	/* iocard_unpublish() waits for this work before it drops @kn. */
	if (kn)
		sysfs_notify_dirent(kn);
}

/*
 * Lock held. The change counters of @port's register, into &iocard.chg_seen
 * for the lines of @lines (bit n for the port's line n); returns the
 * register's value, as iocard_read() would.
 */
static u32 iocard_port_counts(struct iocard *card,
			      const struct iocard_port *port, u32 lines,
			      u32 *delta)
{
	unsigned long bits = lines;
	u32 counts[32], val;
	unsigned int i, line;

	val = card->ops->changes(card, port->reg, counts);
	for_each_set_bit(i, &bits, port->width) {
		line = port->first + i;
		if (delta)
			delta[i] = counts[port->shift + i] - card->chg_seen[line];
		card->chg_seen[line] = counts[port->shift + i];
	}
	return val;
}

/* The flow handler's mask: gpiolib's handling of the line is under way. */
static void iocard_irq_mask(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	__set_bit(irqd_to_hwirq(d), card->irq_busy);
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

/* ... and it is done: changes that came meanwhile may be raised. */
static void iocard_irq_unmask(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	unsigned long flags;
	bool pending;

	raw_spin_lock_irqsave(&card->lock, flags);
	__clear_bit(hwirq, card->irq_busy);
	pending = card->pend[hwirq] && !card->dying;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	if (pending)
		irq_work_queue(&card->reraise_work);
}

/* The line's user lets go of it (free_irq(), disable_irq()). */
static void iocard_irq_disable(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	__clear_bit(hwirq, card->irq_enabled);
	__set_bit(hwirq, card->irq_busy);
	card->pend[hwirq] = 0;
	if (card->cos_hw && !card->detached)
		card->board->model->cos_program(card);
	/* An idle scanner notices the empty mask and stops by itself. */
	if (!test_bit(hwirq, card->irq_handed))
		gpiochip_disable_irq(gc, hwirq);
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

/* A user takes the line's interrupt (request_irq(), enable_irq()). */
static void iocard_irq_enable(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	struct iocard_port *port = iocard_line_port(card, hwirq);
	u32 bit = BIT(hwirq - port->first);
	unsigned long flags;
	u32 val;

	raw_spin_lock_irqsave(&card->lock, flags);
	/* Under the lock: iocard_quiesce() may hand the line over. */
	if (!test_bit(hwirq, card->irq_handed))
		gpiochip_enable_irq(gc, hwirq);
	__set_bit(hwirq, card->irq_enabled);
	__clear_bit(hwirq, card->irq_busy);
	card->pend[hwirq] = 0;
	card->lost[hwirq] = 0;
	if (card->detached) {
		/* Enabled again by a user of a card gone: nothing to drive. */
	} else if (card->cos_hw) {
		/* Changes counted so far are no edges for this user... */
		if (card->ops->changes)
			iocard_port_counts(card, port, bit, NULL);
		/* A new user gets a line the chatter guard turned off back. */
		card->cos_off &= ~bit;
		card->cos_count[hwirq - port->first] = 0;
		/* ... nor is a change latched for an earlier user. */
		card->board->model->cos_ack(card, bit);
		card->board->model->cos_program(card);
	} else {
		/* The reference level: changes count from now on. */
		if (card->ops->changes)
			val = iocard_port_counts(card, port, bit, NULL);
		else
			val = iocard_read(card, port->reg);
		val = iocard_port_bits(port, val);
		__assign_bit(hwirq, card->scan_prev, val & bit);
		iocard_scan_kick(card);
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	irq_work_queue(&card->notify_work);
}

static int iocard_irq_set_type(struct irq_data *d, unsigned int type)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	unsigned long flags;
	bool rise, fall;

	switch (type & IRQ_TYPE_SENSE_MASK) {
	case IRQ_TYPE_EDGE_RISING:
		rise = true;
		fall = false;
		break;
	case IRQ_TYPE_EDGE_FALLING:
		rise = false;
		fall = true;
		break;
	case IRQ_TYPE_EDGE_BOTH:
		rise = true;
		fall = true;
		break;
	default:
		return -EINVAL;
	}

	raw_spin_lock_irqsave(&card->lock, flags);
	__assign_bit(hwirq, card->irq_rise, rise);
	__assign_bit(hwirq, card->irq_fall, fall);
	if (card->cos_hw && !card->detached)
		card->board->model->cos_program(card);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return 0;
}

static void iocard_put(struct iocard *card);

/*
 * A requested line interrupt holds the card: its user may keep it (a
 * process blocked on a line request, say) after the board is gone, and
 * the irq_chip callbacks run until that user lets go.
 */
static int iocard_irq_reqres(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	unsigned long flags;
	bool dying;
	int ret;

	ret = gpiochip_reqres_irq(gc, hwirq);
	if (ret)
		return ret;
	/*
	 * No new line interrupt once the card is dying: its removal has
	 * handed over the interrupts requested until then (iocard_quiesce()),
	 * under this lock, so an interrupt is either refused here or handed
	 * over there.
	 */
	raw_spin_lock_irqsave(&card->lock, flags);
	dying = card->dying;
	if (!dying)
		__set_bit(hwirq, card->irq_used);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	if (dying) {
		gpiochip_relres_irq(gc, hwirq);
		return -ENODEV;
	}
	refcount_inc(&card->refs);
	return 0;
}

static void iocard_irq_relres(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct iocard *card = iocard_from_gc(gc);
	irq_hw_number_t hwirq = irqd_to_hwirq(d);
	unsigned long flags;
	bool handed;

	raw_spin_lock_irqsave(&card->lock, flags);
	handed = __test_and_clear_bit(hwirq, card->irq_handed);
	__clear_bit(hwirq, card->irq_used);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	/*
	 * gpiochip_reqres_irq() took a reference of gc->owner, this module.
	 * A line handed over is no interrupt to gpiolib any more, and its
	 * chip may be gone: the module reference is dropped here.
	 */
	if (handed)
		module_put(THIS_MODULE);
	else
		gpiochip_relres_irq(gc, hwirq);
	iocard_put(card);
}

static const struct irq_chip iocard_irq_chip = {
	.name = "iocard",
	.irq_enable = iocard_irq_enable,
	.irq_disable = iocard_irq_disable,
	.irq_mask = iocard_irq_mask,
	.irq_unmask = iocard_irq_unmask,
	.irq_set_type = iocard_irq_set_type,
	.irq_request_resources = iocard_irq_reqres,
	.irq_release_resources = iocard_irq_relres,
	.flags = IRQCHIP_IMMUTABLE | IRQCHIP_SKIP_SET_WAKE,
};

/* Can line @i raise an interrupt? Inputs only; with COS, the COS port's. */
static bool iocard_line_has_irq(struct iocard *card, unsigned int i)
{
	if (card->cos_hw)
		return card->line_port[i] == card->cos_port;
	return iocard_line_port(card, i)->caps & IOCARD_IN;
}

static int iocard_irq_map(struct irq_domain *domain, unsigned int virq,
			  irq_hw_number_t hwirq)
{
	struct iocard *card = domain->host_data;

	if (hwirq >= card->gc.ngpio || !iocard_line_has_irq(card, hwirq))
		return -ENXIO;
	irq_set_chip_data(virq, &card->gc);
	irq_set_chip_and_handler(virq, &iocard_irq_chip, handle_level_irq);
	irq_set_noprobe(virq);
	return 0;
}

static void iocard_irq_unmap(struct irq_domain *domain, unsigned int virq)
{
	irq_set_chip_and_handler(virq, NULL, NULL);
	irq_set_chip_data(virq, NULL);
}

static const struct irq_domain_ops iocard_irq_domain_ops = {
	.map = iocard_irq_map,
	.unmap = iocard_irq_unmap,
	.xlate = irq_domain_xlate_twocell,
};

/*
 * Software change of state. Runs in hard irq context (also on PREEMPT_RT:
 * HRTIMER_MODE_REL_HARD) and raises the lines' interrupts there, as a COS
 * interrupt handler would. Each input port with an enabled line is read
 * once per period. From levels alone, a pulse shorter than the period can
 * be missed, and two changes within one period are seen as at most one
 * edge; on a card with change counters each change is accounted for.
 */
static enum hrtimer_restart iocard_scan(struct hrtimer *timer)
{
	struct iocard *card = container_of(timer, struct iocard, scan_timer);
	DECLARE_BITMAP(fire, IOCARD_MAX_LINES);
	bool notify = false;
	unsigned long flags;
	unsigned int p, i, line;
	u32 delta[32], n;
	ktime_t period;

	bitmap_zero(fire, IOCARD_MAX_LINES);
	raw_spin_lock_irqsave(&card->lock, flags);
	if (card->dying || bitmap_empty(card->irq_enabled, card->gc.ngpio)) {
		card->scan_active = false;
		raw_spin_unlock_irqrestore(&card->lock, flags);
		return HRTIMER_NORESTART;
	}
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];
		u32 en = iocard_map_get(card->irq_enabled, port->first,
					port->width);
		u32 val;

		if (!en || port->out)
			continue;
		if (card->ops->changes)
			val = iocard_port_counts(card, port, en, delta);
		else
			val = iocard_read(card, port->reg);
		val = iocard_port_bits(port, val);
		for (i = 0; i < port->width; i++) {
			bool now = val & BIT(i);

			line = port->first + i;
			if (!(en & BIT(i)))
				continue;
			if (card->ops->changes)
				n = iocard_edges_of(card, line, delta[i], now);
			else if (now != test_bit(line, card->scan_prev))
				n = iocard_edges_of(card, line, 1, now);
			else
				n = 0;
			__assign_bit(line, card->scan_prev, now);
			if (iocard_line_changed(card, line, n, &notify))
				__set_bit(line, fire);
		}
	}
	period = card->scan_period;
	raw_spin_unlock_irqrestore(&card->lock, flags);

	iocard_fire(card, fire, notify);
	hrtimer_forward_now(timer, period);
	return HRTIMER_RESTART;
}

/**
 * iocard_cos_lines() - the lines whose hardware COS is to be enabled
 * @card: a card with cos_hw; &iocard.lock held
 *
 * For the models' cos_program: nothing until the card is started (its bus
 * interrupt requested) and once it is dying, else the lines of the COS port
 * whose interrupt is unmasked, less those the chatter guard turned off.
 *
 * Return: bit n for line n of the COS port.
 */
u32 iocard_cos_lines(struct iocard *card)
{
	const struct iocard_port *port = &card->ports[card->cos_port];

	if (!card->started || card->dying)
		return 0;
	return iocard_map_get(card->irq_enabled, port->first, port->width) &
	       ~card->cos_off;
}

/*
 * Lock held. Count the changes of @stat in the current window; return the
 * lines that went over the limit (a status bit that never clears, a line
 * toggling faster than any input of a DIO card should).
 */
static u32 iocard_cos_chatter(struct iocard *card, u32 stat)
{
	unsigned long bits = stat;
	unsigned int bit, limit;
	ktime_t now;
	u32 over = 0;

	if (!card->cos_max_rate)
		return 0;
	limit = card->cos_max_rate * IOCARD_COS_WINDOW_MS / MSEC_PER_SEC;
	limit = max(limit, 1U);
	now = ktime_get();
	if (ktime_after(now, ktime_add_ms(card->cos_window,
					  IOCARD_COS_WINDOW_MS))) {
		memset(card->cos_count, 0, sizeof(card->cos_count));
		card->cos_window = now;
	}
	for_each_set_bit(bit, &bits, 32)
		if (++card->cos_count[bit] > limit)
			over |= BIT(bit);
	return over;
}

/*
 * Lock held. Of the lines in @stat (bit n for line n of the COS port), those
 * with edges their user asked for, with how many in @n: from the model's
 * change counts, from the card's change counters, or one per latched bit.
 */
static u32 iocard_cos_counts(struct iocard *card, u32 stat, u32 *n)
{
	const struct iocard_port *port = &card->ports[card->cos_port];
	unsigned long pending = stat;
	u32 delta[32], val, raise = 0;
	unsigned int bit;

	if (!stat)
		return 0;
	if (card->board->model->cos_edges)
		return card->board->model->cos_edges(card, stat, n);
	if (!card->ops->changes) {
		/* A latched bit: at least one edge the user asked for. */
		for_each_set_bit(bit, &pending, 32)
			n[bit] = 1;
		return stat;
	}
	val = iocard_port_bits(port, iocard_port_counts(card, port, stat,
							delta));
	for_each_set_bit(bit, &pending, 32) {
		n[bit] = iocard_edges_of(card, port->first + bit, delta[bit],
					 val & BIT(bit));
		if (n[bit])
			raise |= BIT(bit);
	}
	return raise;
}

/**
 * iocard_cos_irq() - handle a change-of-state interrupt of a card
 * @card: a card with cos_hw
 *
 * Called from the bus interrupt: the PCI handler, or the irq_work of a
 * virtual card. Reads and acknowledges the latched status, keeps the bits
 * of lines whose COS is enabled and raises the interrupt of each. A status
 * of all-ones from a card that is gone (surprise removal) is not ours. An
 * interrupt with no enabled status bit set is counted as spurious (on a
 * shared line it may belong to another device) and left to the kernel's
 * spurious interrupt detector. A line that changes more often than
 * cos_max_rate allows gets its COS turned off (counted, logged).
 *
 * Return: IRQ_HANDLED, or IRQ_NONE if no enabled status bit was set.
 */
irqreturn_t iocard_cos_irq(struct iocard *card)
{
	const struct iocard_port *port = &card->ports[card->cos_port];
	DECLARE_BITMAP(fire, IOCARD_MAX_LINES);
	unsigned long flags, pending;
	u32 stat, raise, over = 0, n[32];
	bool notify = false;
	unsigned int bit, rate;

	bitmap_zero(fire, IOCARD_MAX_LINES);
	raw_spin_lock_irqsave(&card->lock, flags);
	rate = card->cos_max_rate;
	stat = card->board->model->cos_status_ack(card);
	if (stat == U32_MAX && card->ops->gone && card->ops->gone(card)) {
		raw_spin_unlock_irqrestore(&card->lock, flags);
		return IRQ_NONE;
	}
	stat &= iocard_cos_lines(card);
	if (stat)
		over = iocard_cos_chatter(card, stat);
	if (over) {
		card->cos_off |= over;
		card->board->model->cos_program(card);
	}
	raise = iocard_cos_counts(card, stat, n);
	pending = raise;
	for_each_set_bit(bit, &pending, 32)
		if (iocard_line_changed(card, port->first + bit, n[bit],
					&notify))
			__set_bit(port->first + bit, fire);
	raw_spin_unlock_irqrestore(&card->lock, flags);

	if (!stat) {
		atomic_long_inc(&card->spurious);
		return IRQ_NONE;
	}
	pending = over;
	for_each_set_bit(bit, &pending, 32) {
		atomic_long_inc(&card->chatter);
		dev_warn_ratelimited(card->dev,
				     "%s: line %u changes more than %u times a second: its change-of-state interrupt is off until the line is requested again\n",
				     card->name, port->first + bit, rate);
	}
	iocard_fire(card, fire, notify);
	return IRQ_HANDLED;
}

/* --- lifetime ------------------------------------------------------------ */

/**
 * iocard_claim_removal() - stop taking line requests before a removal
 * @card: the card
 *
 * A card in use can go: its users' requests fail from then on, and the
 * ones blocked waiting for events are woken (iocard_chip_removed()).
 */
void iocard_claim_removal(struct iocard *card)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	card->closing = true;
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

static void iocard_release(struct work_struct *work)
{
	struct iocard *card = container_of(work, struct iocard, release_work);
	unsigned int i, virq;

	irq_work_sync(&card->reraise_work);
	irq_work_sync(&card->notify_work);

	if (card->domain) {
		for (i = 0; i < card->gc.ngpio; i++) {
			virq = irq_find_mapping(card->domain, i);
			if (virq)
				irq_dispose_mapping(virq);
		}
		irq_domain_remove(card->domain);
	}
	kfree(card);
}

/*
 * Drop a reference. The last one may go in free_irq() (the release of the
 * interrupt's resources) of the very interrupt whose mapping is disposed
 * of, so the card is freed from the module's workqueue.
 */
static void iocard_put(struct iocard *card)
{
	if (refcount_dec_and_test(&card->refs))
		queue_work(iocard_wq, &card->release_work);
}

/*
 * The last step of a removal: the registers are unmapped next, so nothing
 * touches them after this. The card itself lives on while a line interrupt
 * is still requested.
 */
static void iocard_detach(void *data)
{
	struct iocard *card = data;
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	card->detached = true;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	iocard_put(card);
}

int iocard_id_get(int want)
{
	if (want < 0)
		return ida_alloc(&iocard_ida, GFP_KERNEL);
	return ida_alloc_range(&iocard_ida, want, want, GFP_KERNEL);
}

void iocard_id_put(int id)
{
	ida_free(&iocard_ida, id);
}

static void iocard_id_release(void *data)
{
	struct iocard *card = data;

	iocard_id_put(card->id);
}

/**
 * iocard_alloc() - allocate a card and lay out its ports
 * @dev: bus device; the card is bound to it (and kept after that while a
 *	line interrupt of it is still requested)
 * @board: board table entry
 * @ops: register accessors
 * @priv: accessor data
 * @id: card number reserved with iocard_id_get(), or -1 to allocate one
 *
 * Return: the card, or an ERR_PTR().
 */
struct iocard *iocard_alloc(struct device *dev,
			    const struct iocard_board *board,
			    const struct iocard_ops *ops, void *priv, int id)
{
	struct iocard *card;
	int ret;

	card = kzalloc(sizeof(*card), GFP_KERNEL);
	if (!card)
		return ERR_PTR(-ENOMEM);
	refcount_set(&card->refs, 1);
	INIT_WORK(&card->release_work, iocard_release);
	ret = devm_add_action_or_reset(dev, iocard_detach, card);
	if (ret)
		return ERR_PTR(ret);
	card->dev = dev;
	card->board = board;
	card->ops = ops;
	card->priv = priv;
	raw_spin_lock_init(&card->lock);
	atomic_long_set(&card->spurious, 0);
	atomic_long_set(&card->chatter, 0);
	card->cos_max_rate = iocard_cos_max_rate;
	card->scan_period = ns_to_ktime((u64)iocard_default_scan_us * NSEC_PER_USEC);
	iocard_hrtimer_setup(&card->scan_timer, iocard_scan, CLOCK_MONOTONIC,
			     HRTIMER_MODE_REL_HARD);
	card->reraise_work = IRQ_WORK_INIT_HARD(iocard_reraise);
	init_irq_work(&card->notify_work, iocard_lost_notify);

	ret = board->model->layout(card);
	if (ret)
		return ERR_PTR(dev_err_probe(dev, ret, "bad board layout\n"));

	card->id = id;
	if (card->id < 0) {
		card->id = iocard_id_get(-1);
		if (card->id < 0)
			return ERR_PTR(card->id);
		ret = devm_add_action_or_reset(dev, iocard_id_release, card);
		if (ret)
			return ERR_PTR(ret);
	}
	snprintf(card->name, sizeof(card->name), "iocard%d", card->id);
	return card;
}

/* A consistent copy of the safe state; false when none is set. */
static bool iocard_safe_snapshot(struct iocard *card, unsigned long *state)
{
	unsigned long flags;
	bool valid;

	raw_spin_lock_irqsave(&card->lock, flags);
	valid = card->safe_valid;
	bitmap_copy(state, card->safe_state, IOCARD_MAX_LINES);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return valid;
}

/* After the gpiochip is gone: outputs to the safe state, if one is set. */
static void iocard_apply_safe_state(void *data)
{
	struct iocard *card = data;
	DECLARE_BITMAP(state, IOCARD_MAX_LINES);
	DECLARE_BITMAP(mask, IOCARD_MAX_LINES);

	/* One snapshot: safe_state is writable until the class device goes. */
	if (!iocard_safe_snapshot(card, state))
		return;

	/* iocard_set_lines() drives only the ports that are outputs. */
	bitmap_zero(mask, IOCARD_MAX_LINES);
	bitmap_set(mask, 0, card->gc.ngpio);
	iocard_set_lines(card, mask, state);
	dev_info(card->dev, "%s: outputs set to safe state %*pb\n",
		 card->name, card->gc.ngpio, state);
}

static void iocard_remove_swnode(void *data)
{
	struct iocard *card = data;

	if (!card->keep_names)
		fwnode_remove_software_node(card->gc.fwnode);
}

/*
 * Line names go to the chip as the "gpio-line-names" property of a software
 * node, as gpio-sim does, not through gpio_chip.names: gpiolib checks the
 * latter against every line name in the system, which warns once per line
 * for every second card of a model and, on 6.1, crashes when a removed chip
 * is still held open by a process.
 */
static int iocard_line_names(struct iocard *card)
{
	struct property_entry props[2] = { };
	struct fwnode_handle *fwnode;
	const char **names;
	unsigned int i;
	int ret = -ENOMEM;

	names = kcalloc(card->gc.ngpio, sizeof(*names), GFP_KERNEL);
	if (!names)
		return -ENOMEM;
	for (i = 0; i < card->gc.ngpio; i++) {
		struct iocard_port *port = iocard_line_port(card, i);

		names[i] = kasprintf(GFP_KERNEL, "%s%u", port->name,
				     port->shift + i - port->first);
		if (!names[i])
			goto out;
	}
	props[0] = PROPERTY_ENTRY_STRING_ARRAY_LEN("gpio-line-names", names,
						   card->gc.ngpio);
	/* Copies the names. */
	fwnode = fwnode_create_software_node(props, NULL);
	if (IS_ERR(fwnode)) {
		ret = PTR_ERR(fwnode);
		goto out;
	}
	card->gc.fwnode = fwnode;
	ret = devm_add_action_or_reset(card->dev, iocard_remove_swnode, card);
out:
	for (i = 0; i < card->gc.ngpio; i++)
		kfree(names[i]);
	kfree(names);
	return ret;
}

/*
 * Stop raising interrupts (COS disabled and acknowledged, scanner cancelled)
 * and drain the ones in flight. Once dying is set, COS enable stays 0 and
 * the scanner is not restarted. Idempotent: registered right after the
 * gpiochip is added, so that it runs before the chip goes even when the
 * probe fails later (e.g. in devm_request_irq() after user space unmasked
 * a line), and again by iocard_start(), so that it runs before the bus
 * interrupt is freed.
 */
static void iocard_quiesce(void *data)
{
	struct iocard *card = data;
	unsigned long flags;
	unsigned int i;

	raw_spin_lock_irqsave(&card->lock, flags);
	card->dying = true;
	/*
	 * Hand the line interrupts over: gpiolib stops counting them as
	 * interrupts, iocard keeps them until their users free them. 6.12's
	 * gpiochip_remove() would free each one itself before it waits for
	 * the chip's callers, and so free the interrupt of a line request
	 * that is still being set up (its requester then waits forever for
	 * an irq thread that was stopped before it ran, and the removal
	 * waits for the requester), or one that the request frees again
	 * later, when the number may be another card's. Once handed over,
	 * the removal waits for the request to finish and its user frees
	 * its interrupt, whose mapping stays until then (the domain is the
	 * card's).
	 */
	for_each_set_bit(i, card->irq_used, card->gc.ngpio)
		if (!__test_and_set_bit(i, card->irq_handed))
			gpiochip_unlock_as_irq(&card->gc, i);
	if (card->cos_hw) {
		card->board->model->cos_program(card);
		card->board->model->cos_status_ack(card);
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	hrtimer_cancel(&card->scan_timer);
	if (card->ops->quiesce)
		card->ops->quiesce(card);
	/* Raised by a line unmasked while the card was still live. */
	irq_work_sync(&card->reraise_work);
}

/*
 * After the gpiochip is gone, where gpiolib cannot remove a chip in use
 * (iocard-compat.h):
 * - Lines still requested keep a module reference that gpiolib never
 *   drops: iocard drops it, so that rmmod works once their users are gone.
 * - Their gpio_device is then never freed, and one held open lives on for
 *   a while: either way it points at the line names, which stay.
 * - A process blocked on a line request learns that the chip is gone: its
 *   interrupt is raised once more; gpiolib's handler wakes the process,
 *   whose read then fails with ENODEV and poll() says POLLERR (no edge is
 *   delivered).
 */
static void iocard_chip_removed(void *data)
{
	struct iocard *card = data;
	unsigned int i, virq, held;
	unsigned long flags;

	if (IOCARD_GPIOLIB_REMOVES_IN_USE)
		return;

	raw_spin_lock_irqsave(&card->lock, flags);
	card->orphaned = true;
	held = bitmap_weight(card->requested, card->gc.ngpio);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	for (i = 0; i < held; i++)
		module_put(THIS_MODULE);

	if (card->gpio_dev) {
		/* Besides this reference, any holder keeps it alive. */
		if (held || kref_read(&card->gpio_dev->kobj.kref) > 1)
			card->keep_names = true;
		put_device(card->gpio_dev);
		card->gpio_dev = NULL;
	}
	if (card->keep_names)
		dev_info(card->dev,
			 "%s: removed while in use; its line names stay allocated for the gpiochip still held\n",
			 card->name);

	for (i = 0; i < card->gc.ngpio; i++) {
		virq = irq_find_mapping(card->domain, i);
		if (virq && irq_has_action(virq))
			generic_handle_domain_irq_safe(card->domain, i);
	}
}

/**
 * iocard_restore() - load the board's registers again from the driver's state
 * @card: a started card whose board lost its registers (resume, reset)
 *
 * Port directions, outputs (from the shadows) and the COS registers as they
 * were; nothing for a card that is dying.
 */
void iocard_restore(struct iocard *card)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	if (!card->dying)
		card->board->model->hw_restore(card);
	raw_spin_unlock_irqrestore(&card->lock, flags);
}

/**
 * iocard_shutdown() - leave the board safe for a reboot or kexec
 * @card: the card
 *
 * As at removal, without removing anything: the card stops raising
 * interrupts (for good) and its outputs go to the safe state, if one is set.
 */
void iocard_shutdown(struct iocard *card)
{
	iocard_quiesce(card);
	iocard_apply_safe_state(card);
}

/**
 * iocard_add_gpiochip() - put the card in its start state, add its gpiochip
 * @card: card from iocard_alloc()
 *
 * Return: 0 or a negative errno.
 */
int iocard_add_gpiochip(struct iocard *card)
{
	struct gpio_chip *gc = &card->gc;
	struct device *dev = card->dev;
	unsigned long flags;
	int ret;

	ret = iocard_line_names(card);
	if (ret)
		return ret;

	gc->label = card->name;
	gc->parent = card->cdev;
	gc->owner = THIS_MODULE;
	gc->base = -1;
	gc->can_sleep = false;
	gc->request = iocard_gpio_request;
	gc->free = iocard_gpio_free;
	gc->get_direction = iocard_gpio_get_direction;
	gc->direction_input = iocard_gpio_direction_input;
	gc->direction_output = iocard_gpio_direction_output;
	gc->get = iocard_gpio_get;
	gc->get_multiple = iocard_gpio_get_multiple;
	gc->set = iocard_gpio_set;
	gc->set_multiple = iocard_gpio_set_multiple;

	/*
	 * The irq domain is the card's on every kernel: its mappings stay
	 * until the last line interrupt is released (iocard_release()), also
	 * when that comes after the chip's removal.
	 */
	card->domain = irq_domain_create_linear(NULL, gc->ngpio,
						&iocard_irq_domain_ops, card);
	if (!card->domain)
		return -ENOMEM;

	raw_spin_lock_irqsave(&card->lock, flags);
	card->board->model->hw_init(card);
	raw_spin_unlock_irqrestore(&card->lock, flags);

	ret = devm_add_action_or_reset(dev, iocard_apply_safe_state, card);
	if (ret)
		return ret;

	ret = devm_add_action_or_reset(dev, iocard_chip_removed, card);
	if (ret)
		return ret;
	ret = devm_gpiochip_add_data(dev, gc, card);
	if (ret)
		return dev_err_probe(dev, ret, "cannot add gpiochip\n");
	if (!IOCARD_GPIOLIB_REMOVES_IN_USE) {
		card->gpio_dev = iocard_gpio_device_get(gc);
		if (!card->gpio_dev)
			card->keep_names = true;
	}
	ret = gpiochip_irqchip_add_domain(gc, card->domain);
	if (ret)
		return ret;
	ret = devm_add_action_or_reset(dev, iocard_quiesce, card);
	if (ret)
		return ret;
	iocard_gpiochip_name(gc, card->chip_name, sizeof(card->chip_name));
	/* The class device's add event came before its gpiochip attribute. */
	kobject_uevent(&card->cdev->kobj, KOBJ_CHANGE);
	return 0;
}

/* --- sysfs --------------------------------------------------------------- */

static ssize_t model_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", card->board->name);
}
static DEVICE_ATTR_RO(model);

static ssize_t location_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", card->location);
}
static DEVICE_ATTR_RO(location);

static ssize_t gpiochip_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", card->chip_name);
}
static DEVICE_ATTR_RO(gpiochip);

static ssize_t ports_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	static const char * const dir[] = {
		[IOCARD_IN] = "in", [IOCARD_OUT] = "out", [IOCARD_IO] = "io",
	};
	struct iocard *card = dev_get_drvdata(dev);
	unsigned int p;
	int len = 0;

	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];

		len += sysfs_emit_at(buf, len, "%s%s:%u:%s", p ? " " : "",
				     port->name, port->width, dir[port->caps]);
	}
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(ports);

static ssize_t cos_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", card->cos_hw ? "hw" : "scan");
}
static DEVICE_ATTR_RO(cos);

static ssize_t spurious_irqs_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&card->spurious));
}
static DEVICE_ATTR_RO(spurious_irqs);

static ssize_t cos_chatter_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&card->chatter));
}
static DEVICE_ATTR_RO(cos_chatter);

/* "OFFSET:COUNT" of each line with a loss since its interrupt was enabled. */
static ssize_t lost_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	unsigned int i;
	int len = 0;

	raw_spin_lock_irqsave(&card->lock, flags);
	for (i = 0; i < card->gc.ngpio; i++)
		if (card->lost[i])
			len += sysfs_emit_at(buf, len, "%s%u:%llu",
					     len ? " " : "", i,
					     (unsigned long long)card->lost[i]);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(lost);

static ssize_t cos_max_rate_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	unsigned int rate;

	raw_spin_lock_irqsave(&card->lock, flags);
	rate = card->cos_max_rate;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return sysfs_emit(buf, "%u\n", rate);
}

/*
 * A new limit starts a new window. Lines the guard already turned off stay
 * off until they are requested again, as before.
 */
static ssize_t cos_max_rate_store(struct device *dev,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	unsigned int rate;

	if (kstrtouint(buf, 10, &rate) ||
	    (rate && (rate < IOCARD_COS_RATE_MIN || rate > IOCARD_COS_RATE_MAX)))
		return -EINVAL;
	raw_spin_lock_irqsave(&card->lock, flags);
	card->cos_max_rate = rate;
	memset(card->cos_count, 0, sizeof(card->cos_count));
	card->cos_window = ktime_get();
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return count;
}
static DEVICE_ATTR_RW(cos_max_rate);

static ssize_t scan_period_us_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	ktime_t period;

	raw_spin_lock_irqsave(&card->lock, flags);
	period = card->scan_period;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return sysfs_emit(buf, "%lld\n", ktime_to_us(period));
}

static ssize_t scan_period_us_store(struct device *dev,
				    struct device_attribute *attr,
				    const char *buf, size_t count)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	unsigned int us;

	if (kstrtouint(buf, 10, &us) ||
	    us < IOCARD_SCAN_MIN_US || us > IOCARD_SCAN_MAX_US)
		return -EINVAL;
	raw_spin_lock_irqsave(&card->lock, flags);
	card->scan_period = ns_to_ktime((u64)us * NSEC_PER_USEC);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return count;
}
static DEVICE_ATTR_RW(scan_period_us);

/**
 * iocard_parse_bitmap() - parse a bitmap written to a sysfs attribute
 * @buf: the text
 * @count: length of @buf
 * @map: result, IOCARD_MAX_LINES bits
 * @nbits: number of valid bits
 *
 * Stricter than bitmap_parse(), which also takes an empty text, bare or
 * doubled commas and spaces between words as zeros or separators: after
 * leading and trailing white space is dropped, only hex words of 1..8
 * digits separated by single commas are accepted.
 *
 * Return: 0 or -EINVAL.
 */
int iocard_parse_bitmap(const char *buf, size_t count, unsigned long *map,
			unsigned int nbits)
{
	size_t i, digits = 0;

	while (count && isspace(*buf)) {
		buf++;
		count--;
	}
	while (count && isspace(buf[count - 1]))
		count--;
	for (i = 0; i < count; i++) {
		if (buf[i] == ',' && digits) {
			digits = 0;
			continue;
		}
		if (!isxdigit(buf[i]) || ++digits > 8)
			return -EINVAL;
	}
	if (!digits)
		return -EINVAL;	/* empty, or a comma at the end */
	bitmap_zero(map, IOCARD_MAX_LINES);
	return bitmap_parse(buf, count, map, nbits) ? -EINVAL : 0;
}

static ssize_t port_lock_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);
	unsigned long flags;
	unsigned int p;
	int len = 0;

	raw_spin_lock_irqsave(&card->lock, flags);
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];

		if (port->locked)
			len += sysfs_emit_at(buf, len, "%s%s:%s", len ? " " : "",
					     port->name, port->out ? "out" : "in");
	}
	raw_spin_unlock_irqrestore(&card->lock, flags);
	if (!len)
		len = sysfs_emit(buf, "none");
	return len + sysfs_emit_at(buf, len, "\n");
}

/*
 * "PORT in", "PORT out": the port turns that way now, if none of its lines
 * is in use the other way, and stays so; "PORT free" lets line requests
 * turn it again. Only ports whose direction can change (IOCARD_IO).
 */
static ssize_t port_lock_store(struct device *dev,
			       struct device_attribute *attr, const char *buf,
			       size_t count)
{
	struct iocard *card = dev_get_drvdata(dev);
	char text[32], *word, *name;
	struct iocard_port *port = NULL;
	unsigned long flags;
	bool out = false, lock = true;
	unsigned int p, i;
	int ret = 0;

	if (count >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, count);
	text[count] = '\0';
	word = strim(text);
	name = strsep(&word, " ");
	if (!word)
		return -EINVAL;
	word = skip_spaces(word);
	if (!strcmp(word, "in"))
		out = false;
	else if (!strcmp(word, "out"))
		out = true;
	else if (!strcmp(word, "free"))
		lock = false;
	else
		return -EINVAL;
	for (p = 0; p < card->nports; p++)
		if (!strcmp(card->ports[p].name, name))
			port = &card->ports[p];
	if (!port || port->caps != IOCARD_IO)
		return -EINVAL;

	raw_spin_lock_irqsave(&card->lock, flags);
	/*
	 * The attribute outlives the gpiochip (the class device goes last):
	 * nothing once the card is dying.
	 */
	if (card->dying) {
		ret = -ENODEV;
	} else if (lock && port->out != out) {
		/* Not under lines that are in use the other way. */
		for (i = port->first; i < port->first + port->width; i++)
			if (test_bit(i, card->requested) ||
			    test_bit(i, card->irq_used))
				ret = -EBUSY;
		if (!ret) {
			port->locked = false;
			ret = iocard_port_set_dir(card, port->first, out);
		}
	}
	if (!ret)
		port->locked = lock;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(port_lock);

static ssize_t safe_state_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct iocard *card = dev_get_drvdata(dev);
	DECLARE_BITMAP(state, IOCARD_MAX_LINES);

	if (!iocard_safe_snapshot(card, state))
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%*pb\n", card->gc.ngpio, state);
}

static ssize_t safe_state_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct iocard *card = dev_get_drvdata(dev);
	DECLARE_BITMAP(state, IOCARD_MAX_LINES);
	unsigned long flags;
	unsigned int p;

	if (sysfs_streq(buf, "none")) {
		raw_spin_lock_irqsave(&card->lock, flags);
		card->safe_valid = false;
		raw_spin_unlock_irqrestore(&card->lock, flags);
		return count;
	}
	if (iocard_parse_bitmap(buf, count, state, card->gc.ngpio))
		return -EINVAL;
	/* A level for a line that can never drive is a mistake. */
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];

		if (!(port->caps & IOCARD_OUT) &&
		    iocard_map_get(state, port->first, port->width))
			return -EINVAL;
	}
	raw_spin_lock_irqsave(&card->lock, flags);
	bitmap_copy(card->safe_state, state, IOCARD_MAX_LINES);
	card->safe_valid = true;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	return count;
}
static DEVICE_ATTR_RW(safe_state);

static struct attribute *iocard_card_attrs[] = {
	&dev_attr_model.attr,
	&dev_attr_location.attr,
	&dev_attr_gpiochip.attr,
	&dev_attr_ports.attr,
	&dev_attr_cos.attr,
	&dev_attr_spurious_irqs.attr,
	&dev_attr_cos_chatter.attr,
	&dev_attr_lost.attr,
	&dev_attr_cos_max_rate.attr,
	&dev_attr_scan_period_us.attr,
	&dev_attr_safe_state.attr,
	&dev_attr_port_lock.attr,
	NULL
};

static umode_t iocard_card_attr_visible(struct kobject *kobj,
					struct attribute *attr, int n)
{
	struct iocard *card = dev_get_drvdata(kobj_to_dev(kobj));

	if (attr == &dev_attr_scan_period_us.attr && card->cos_hw)
		return 0;
	if (attr == &dev_attr_port_lock.attr) {
		unsigned int p;

		for (p = 0; p < card->nports; p++)
			if (card->ports[p].caps == IOCARD_IO)
				return attr->mode;
		return 0;
	}
	if ((attr == &dev_attr_spurious_irqs.attr ||
	     attr == &dev_attr_cos_chatter.attr ||
	     attr == &dev_attr_cos_max_rate.attr) && !card->cos_hw)
		return 0;
	return attr->mode;
}

static const struct attribute_group iocard_card_group = {
	.attrs = iocard_card_attrs,
	.is_visible = iocard_card_attr_visible,
};

/* Registered by iocard_core_init(), with the module's class attributes. */
static struct class iocard_class = {
	.name = "iocard",
};

static void iocard_unpublish(void *data)
{
	struct iocard *card = data;
	struct kernfs_node *kn;
	unsigned long flags;

	raw_spin_lock_irqsave(&card->lock, flags);
	kn = card->lost_kn;
	card->lost_kn = NULL;
	raw_spin_unlock_irqrestore(&card->lock, flags);
	irq_work_sync(&card->notify_work);
	sysfs_put(kn);
	device_unregister(card->cdev);
}

/**
 * iocard_publish() - make a card visible in /sys/class/iocard
 * @card: card from iocard_alloc(), before iocard_add_gpiochip()
 * @location: bus location for the "location" attribute
 * @extra: optional attribute group of the bus glue, or NULL
 *
 * The class device is created first so that the gpiochip can sit below it:
 * udev rules and libio find a chip's card among its parents. It goes last
 * at removal, after the gpiochip.
 *
 * Return: 0 or a negative errno.
 */
int iocard_publish(struct iocard *card, const char *location,
		   const struct attribute_group *extra)
{
	strscpy(card->location, location, sizeof(card->location));
	card->groups[0] = &iocard_card_group;
	card->groups[1] = extra;
	card->groups[2] = NULL;
	card->cdev = device_create_with_groups(&iocard_class, card->dev,
					       MKDEV(0, 0), card, card->groups,
					       "%s", card->name);
	if (IS_ERR(card->cdev))
		return dev_err_probe(card->dev, PTR_ERR(card->cdev),
				     "cannot create class device\n");
	/* Not yet in use: no lock needed. NULL if it failed, polled never. */
	card->lost_kn = sysfs_get_dirent(card->cdev->kobj.sd, "lost");
	return devm_add_action_or_reset(card->dev, iocard_unpublish, card);
}

/**
 * iocard_start() - let a published card with its gpiochip raise events
 * @card: card after iocard_add_gpiochip() and the bus interrupt set-up
 *
 * Until now a hardware COS card keeps its COS enable at 0, even for lines
 * user space unmasked since the gpiochip was added: no interrupt before its
 * handler is there. Registers the quiesce step again, so that at removal it
 * runs before the bus interrupt is freed.
 *
 * Return: 0 or a negative errno.
 */
int iocard_start(struct iocard *card)
{
	unsigned long flags;
	int ret;

	ret = devm_add_action_or_reset(card->dev, iocard_quiesce, card);
	if (ret)
		return ret;
	raw_spin_lock_irqsave(&card->lock, flags);
	card->started = true;
	if (card->cos_hw)
		card->board->model->cos_program(card);
	raw_spin_unlock_irqrestore(&card->lock, flags);
	dev_info(card->dev, "%s: %s, %u lines, %s, cos %s\n", card->name,
		 card->board->name, card->gc.ngpio, card->chip_name,
		 card->cos_hw ? "hw" : "scan");
	return 0;
}

/* --- module -------------------------------------------------------------- */

/**
 * iocard_core_check_param() - validate the core's module parameters
 *
 * Return: 0, or -EINVAL after saying what is wrong.
 */
int iocard_core_check_param(void)
{
	if (iocard_default_scan_us < IOCARD_SCAN_MIN_US ||
	    iocard_default_scan_us > IOCARD_SCAN_MAX_US) {
		pr_err("scan_period_us=%u out of range %u..%u\n",
		       iocard_default_scan_us, IOCARD_SCAN_MIN_US,
		       IOCARD_SCAN_MAX_US);
		return -EINVAL;
	}
	if (iocard_cos_max_rate &&
	    (iocard_cos_max_rate < IOCARD_COS_RATE_MIN ||
	     iocard_cos_max_rate > IOCARD_COS_RATE_MAX)) {
		pr_err("cos_max_rate=%u: 0, or out of range %u..%u\n",
		       iocard_cos_max_rate, IOCARD_COS_RATE_MIN,
		       IOCARD_COS_RATE_MAX);
		return -EINVAL;
	}
	return 0;
}

/**
 * iocard_core_init() - register the class "iocard"
 * @class_groups: attribute groups of /sys/class/iocard itself, or NULL
 *
 * Called once at module load, before any card is published.
 *
 * Return: 0 or a negative errno.
 */
int iocard_core_init(const struct attribute_group **class_groups)
{
	int ret;

	iocard_wq = alloc_workqueue("iocard", 0, 0);
	if (!iocard_wq)
		return -ENOMEM;
	iocard_class.class_groups = class_groups;
	ret = class_register(&iocard_class);
	if (ret)
		destroy_workqueue(iocard_wq);
	return ret;
}

/**
 * iocard_core_exit() - unregister the class, once every card is unbound
 */
void iocard_core_exit(void)
{
	class_unregister(&iocard_class);
	/* Cards released by their last user: freed before the code goes. */
	destroy_workqueue(iocard_wq);
	ida_destroy(&iocard_ida);
}
