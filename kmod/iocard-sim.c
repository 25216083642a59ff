// SPDX-License-Identifier: GPL-2.0
/*
 * iocard: virtual cards.
 *
 * A virtual card is a register-level model of a board behind the same
 * accessors the core uses for PCI boards, on a platform device
 * "iocard-sim.N" (/sys/devices/platform/iocard-sim.N). The model keeps the
 * levels applied to the card's connector from outside (sim_inputs), and a
 * loopback switch that wires outputs to inputs like a loopback cable:
 *
 *   8255:  port A <-> port B, C lower <-> C upper, bit for bit, per PPI.
 *          A pin is driven by its own port when that port is an output,
 *          else by its partner when loopback is on and the partner is an
 *          output, else it has the level set in sim_inputs.
 *   COS32: OUTn -> INn. With loopback off, INn has the sim_inputs level.
 *
 * COS32 latches changes into STAT like the hardware and raises its
 * interrupt through an irq_work that runs in hard irq context (also on
 * PREEMPT_RT), so the core's COS handler runs exactly as for a PCI board.
 *
 * Unlike a real 8255 (and like the PCI test board's CHG registers), every
 * virtual card counts the changes of level of each of its pins, whatever
 * made them (sim_inputs, an output through the loopback, a port switched
 * around); the core reads the counts with a port's register
 * (iocard_ops.changes), so it knows how many changes came between two
 * reads.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitfield.h>
#include <linux/bitmap.h>
#include <linux/ctype.h>
#include <linux/irq_work.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "iocard.h"

#define IOCARD_SIM_DRIVER	"iocard-sim"
#define IOCARD_SIM_MAX_PARAM	32	/* cards created by sim= */
#define IOCARD_SIM_MAX_LIMIT	256	/* largest max_sims */
#define I8255_MAX_CHIPS		(IOCARD_REG_SPACE / I8255_SIZE)

static char *iocard_sim_param;
module_param_named(sim, iocard_sim_param, charp, 0444);
MODULE_PARM_DESC(sim,
		 "Virtual cards to create at load, comma-separated model names (see /sys/class/iocard/new_sim)");

static unsigned int iocard_sim_max = 16;
module_param_named(max_sims, iocard_sim_max, uint, 0444);
MODULE_PARM_DESC(max_sims,
		 "Most virtual cards that may exist at once (1..256, default 16)");

/**
 * struct iocard_sim - register model of one virtual card
 * @lock: protects the model; nests inside &iocard.lock
 * @board: board table entry
 * @card: the card built on this model
 * @irq_work: the card's interrupt line
 * @nlines: number of lines
 * @loopback: outputs wired to inputs
 * @ext: levels applied from outside, by gpio offset
 * @latch: 8255 output latches, per PPI: A, B, C
 * @cw: 8255 control words
 * @out: COS32 OUT
 * @en: COS32 EN
 * @rise: COS32 RISE
 * @fall: COS32 FALL
 * @stat: COS32 STAT
 * @pins: COS32 input levels
 * @level: level of each pin when the counts were last brought up to date
 * @chg: per pin, by gpio offset, how often its level changed (wraps)
 */
struct iocard_sim {
	raw_spinlock_t lock;
	const struct iocard_board *board;
	struct iocard *card;
	struct irq_work irq_work;
	unsigned int nlines;
	bool loopback;
	DECLARE_BITMAP(ext, IOCARD_MAX_LINES);
	u8 latch[I8255_MAX_CHIPS][3];
	u8 cw[I8255_MAX_CHIPS];
	u32 out, en, rise, fall, stat, pins;
	DECLARE_BITMAP(level, IOCARD_MAX_LINES);
	u32 chg[IOCARD_MAX_LINES];
};

/* The model is COS32, not 8255. */
static bool sim_is_cos32(const struct iocard_sim *sim)
{
	return sim->board->model == &iocard_cos32_model;
}

/* --- 8255 model ---------------------------------------------------------- */

static u8 swap_nibbles(u8 v)
{
	return (v << 4) | (v >> 4);
}

/* Output mask of data port @idx (0 = A, 1 = B, 2 = C) of PPI @chip. */
static u8 sim_8255_outmask(struct iocard_sim *sim, unsigned int chip,
			   unsigned int idx)
{
	u8 cw = sim->cw[chip];

	switch (idx) {
	case I8255_PORT_A:
		return cw & I8255_CW_A_IN ? 0 : 0xff;
	case I8255_PORT_B:
		return cw & I8255_CW_B_IN ? 0 : 0xff;
	default:
		return (cw & I8255_CW_CU_IN ? 0 : 0xf0) |
		       (cw & I8255_CW_CL_IN ? 0 : 0x0f);
	}
}

/* gpio offset of the first line of data port @idx of PPI @chip. */
static unsigned int sim_8255_line(unsigned int chip, unsigned int idx)
{
	return chip * 24 + idx * 8;
}

/* Levels on the pins of one data port. */
static u8 sim_8255_pins(struct iocard_sim *sim, unsigned int chip,
			unsigned int idx)
{
	u8 m = sim_8255_outmask(sim, chip, idx);
	u8 d = sim->latch[chip][idx];
	u8 ext = iocard_map_get(sim->ext, sim_8255_line(chip, idx), 8);
	u8 pm = 0, pd = 0;

	if (sim->loopback) {
		if (idx == I8255_PORT_C) {
			pm = swap_nibbles(m);
			pd = swap_nibbles(d);
		} else {
			pm = sim_8255_outmask(sim, chip, idx ^ 1);
			pd = sim->latch[chip][idx ^ 1];
		}
	}
	return (d & m) | (pd & pm & ~m) | (ext & ~m & ~pm);
}

static u32 sim_8255_read(struct iocard_sim *sim, unsigned int reg)
{
	unsigned int chip = reg / I8255_SIZE, idx = reg % I8255_SIZE;

	if (chip >= sim->board->chips || idx == I8255_CTRL)
		return 0xff;	/* control register is write only */
	return sim_8255_pins(sim, chip, idx);
}

static void sim_8255_write(struct iocard_sim *sim, unsigned int reg, u8 val)
{
	unsigned int chip = reg / I8255_SIZE, idx = reg % I8255_SIZE;

	if (chip >= sim->board->chips)
		return;
	if (idx != I8255_CTRL) {
		sim->latch[chip][idx] = val;
	} else if (val & I8255_CW_MODE_SET) {
		/* Mode set clears all output latches, as on the chip. */
		sim->cw[chip] = val;
		memset(sim->latch[chip], 0, sizeof(sim->latch[chip]));
	} else if (val & I8255_CW_BSR_SET) {
		sim->latch[chip][I8255_PORT_C] |=
			BIT(FIELD_GET(I8255_CW_BSR_BIT, val));
	} else {
		sim->latch[chip][I8255_PORT_C] &=
			~BIT(FIELD_GET(I8255_CW_BSR_BIT, val));
	}
}

/* --- change counters ---------------------------------------------------- */

static u32 sim_cos_read(struct iocard_sim *sim, unsigned int reg);

/* Model lock held. The level of every pin, by gpio offset. */
static void sim_levels(struct iocard_sim *sim, unsigned long *levels)
{
	unsigned int chip, idx;

	bitmap_zero(levels, IOCARD_MAX_LINES);
	if (sim_is_cos32(sim)) {
		iocard_map_set(levels, 0, COS32_LINES,
			       sim_cos_read(sim, COS32_IN));
		iocard_map_set(levels, COS32_LINES, COS32_LINES, sim->out);
		return;
	}
	for (chip = 0; chip < sim->board->chips; chip++)
		for (idx = 0; idx < 3; idx++)
			iocard_map_set(levels, sim_8255_line(chip, idx), 8,
				       sim_8255_pins(sim, chip, idx));
}

/*
 * Model lock held, after anything that may have moved a pin: count each
 * pin that changed. With @count false, only take the levels (at probe).
 */
static void sim_count(struct iocard_sim *sim, bool count)
{
	DECLARE_BITMAP(now, IOCARD_MAX_LINES);
	DECLARE_BITMAP(changed, IOCARD_MAX_LINES);
	unsigned int i;

	sim_levels(sim, now);
	if (count) {
		bitmap_xor(changed, now, sim->level, IOCARD_MAX_LINES);
		for_each_set_bit(i, changed, IOCARD_MAX_LINES)
			sim->chg[i]++;
	}
	bitmap_copy(sim->level, now, IOCARD_MAX_LINES);
}

/* --- COS32 model --------------------------------------------------------- */

/* Recompute the inputs, latch changes, raise the interrupt. */
static void sim_cos_update(struct iocard_sim *sim)
{
	u32 now = sim->loopback ? sim->out :
		  iocard_map_get(sim->ext, 0, COS32_LINES);
	u32 changed = now ^ sim->pins;

	sim->stat |= ((changed & now & sim->rise) |
		      (changed & ~now & sim->fall)) & sim->en;
	sim->pins = now;
	if (sim->stat & sim->en)
		irq_work_queue(&sim->irq_work);
}

static u32 sim_cos_read(struct iocard_sim *sim, unsigned int reg)
{
	switch (reg) {
	case COS32_IN:
		return sim->pins;
	case COS32_OUT:
		return sim->out;
	case COS32_EN:
		return sim->en;
	case COS32_RISE:
		return sim->rise;
	case COS32_FALL:
		return sim->fall;
	case COS32_STAT:
		return sim->stat;
	case COS32_ID:
		return COS32_ID_VALUE;
	default:
		return 0;
	}
}

static void sim_cos_write(struct iocard_sim *sim, unsigned int reg, u32 val)
{
	switch (reg) {
	case COS32_OUT:
		sim->out = val;
		break;
	case COS32_EN:
		sim->en = val;
		break;
	case COS32_RISE:
		sim->rise = val;
		break;
	case COS32_FALL:
		sim->fall = val;
		break;
	case COS32_ACK:
		sim->stat &= ~val;
		break;
	default:
		return;
	}
	sim_cos_update(sim);
}

/* --- accessors ----------------------------------------------------------- */

static u32 iocard_sim_read(struct iocard *card, unsigned int reg)
{
	struct iocard_sim *sim = card->priv;
	unsigned long flags;
	u32 val;

	raw_spin_lock_irqsave(&sim->lock, flags);
	if (sim_is_cos32(sim))
		val = sim_cos_read(sim, reg);
	else
		val = sim_8255_read(sim, reg);
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return val;
}

static void iocard_sim_write(struct iocard *card, unsigned int reg, u32 val)
{
	struct iocard_sim *sim = card->priv;
	unsigned long flags;

	raw_spin_lock_irqsave(&sim->lock, flags);
	if (sim_is_cos32(sim))
		sim_cos_write(sim, reg, val);
	else
		sim_8255_write(sim, reg, val);
	sim_count(sim, true);
	raw_spin_unlock_irqrestore(&sim->lock, flags);
}

static u32 iocard_sim_changes(struct iocard *card, unsigned int reg,
			      u32 *counts)
{
	struct iocard_sim *sim = card->priv;
	unsigned int i, first = 0, width = 0;
	unsigned long flags;
	u32 val;

	raw_spin_lock_irqsave(&sim->lock, flags);
	if (sim_is_cos32(sim)) {
		val = sim_cos_read(sim, reg);
		if (reg == COS32_IN)
			width = COS32_LINES;
	} else {
		val = sim_8255_read(sim, reg);
		if (reg / I8255_SIZE < sim->board->chips &&
		    reg % I8255_SIZE != I8255_CTRL) {
			first = sim_8255_line(reg / I8255_SIZE,
					      reg % I8255_SIZE);
			width = 8;
		}
	}
	for (i = 0; i < 32; i++)
		counts[i] = i < width ? sim->chg[first + i] : 0;
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return val;
}

static void iocard_sim_quiesce(struct iocard *card)
{
	struct iocard_sim *sim = card->priv;

	irq_work_sync(&sim->irq_work);
}

static const struct iocard_ops iocard_sim_ops = {
	.read = iocard_sim_read,
	.write = iocard_sim_write,
	.quiesce = iocard_sim_quiesce,
	.changes = iocard_sim_changes,
};

static void iocard_sim_irq(struct irq_work *work)
{
	struct iocard_sim *sim = container_of(work, struct iocard_sim, irq_work);

	iocard_cos_irq(sim->card);
}

/* --- sysfs --------------------------------------------------------------- */

static struct iocard_sim *dev_to_sim(struct device *dev)
{
	struct iocard *card = dev_get_drvdata(dev);

	return card->priv;
}

static ssize_t sim_inputs_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct iocard_sim *sim = dev_to_sim(dev);
	DECLARE_BITMAP(ext, IOCARD_MAX_LINES);
	unsigned long flags;

	raw_spin_lock_irqsave(&sim->lock, flags);
	bitmap_copy(ext, sim->ext, IOCARD_MAX_LINES);
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return sysfs_emit(buf, "%*pb\n", sim->nlines, ext);
}

static ssize_t sim_inputs_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct iocard_sim *sim = dev_to_sim(dev);
	struct iocard *card = sim->card;
	DECLARE_BITMAP(ext, IOCARD_MAX_LINES);
	unsigned long flags;
	unsigned int p;

	if (iocard_parse_bitmap(buf, count, ext, sim->nlines))
		return -EINVAL;
	/* Output-only lines have no input to drive. */
	for (p = 0; p < card->nports; p++) {
		const struct iocard_port *port = &card->ports[p];

		if (!(port->caps & IOCARD_IN) &&
		    find_next_bit(ext, port->first + port->width,
				  port->first) < port->first + port->width)
			return -EINVAL;
	}
	raw_spin_lock_irqsave(&sim->lock, flags);
	bitmap_copy(sim->ext, ext, IOCARD_MAX_LINES);
	if (sim_is_cos32(sim))
		sim_cos_update(sim);
	sim_count(sim, true);
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return count;
}
static DEVICE_ATTR_RW(sim_inputs);

static ssize_t sim_outputs_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct iocard_sim *sim = dev_to_sim(dev);
	DECLARE_BITMAP(out, IOCARD_MAX_LINES);
	unsigned long flags;
	unsigned int chip, idx, i;

	bitmap_zero(out, IOCARD_MAX_LINES);
	raw_spin_lock_irqsave(&sim->lock, flags);
	if (sim_is_cos32(sim)) {
		for (i = 0; i < COS32_LINES; i++)
			__assign_bit(COS32_LINES + i, out, sim->out & BIT(i));
	} else {
		for (chip = 0; chip < sim->board->chips; chip++) {
			for (idx = 0; idx < 3; idx++) {
				u8 v = sim->latch[chip][idx] &
				       sim_8255_outmask(sim, chip, idx);

				for (i = 0; i < 8; i++)
					__assign_bit(sim_8255_line(chip, idx) + i,
						     out, v & BIT(i));
			}
		}
	}
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return sysfs_emit(buf, "%*pb\n", sim->nlines, out);
}
static DEVICE_ATTR_RO(sim_outputs);

static ssize_t sim_loopback_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(dev_to_sim(dev)->loopback));
}

static ssize_t sim_loopback_store(struct device *dev,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	struct iocard_sim *sim = dev_to_sim(dev);
	unsigned long flags;
	bool on;

	/* Only the words of ABI.md: kstrtobool() also takes "10" or "yeah". */
	if (sysfs_streq(buf, "1") || sysfs_streq(buf, "y") ||
	    sysfs_streq(buf, "on"))
		on = true;
	else if (sysfs_streq(buf, "0") || sysfs_streq(buf, "n") ||
		 sysfs_streq(buf, "off"))
		on = false;
	else
		return -EINVAL;
	raw_spin_lock_irqsave(&sim->lock, flags);
	WRITE_ONCE(sim->loopback, on);
	if (sim_is_cos32(sim))
		sim_cos_update(sim);
	sim_count(sim, true);
	raw_spin_unlock_irqrestore(&sim->lock, flags);
	return count;
}
static DEVICE_ATTR_RW(sim_loopback);

static struct attribute *iocard_sim_attrs[] = {
	&dev_attr_sim_inputs.attr,
	&dev_attr_sim_outputs.attr,
	&dev_attr_sim_loopback.attr,
	NULL
};

static const struct attribute_group iocard_sim_group = {
	.attrs = iocard_sim_attrs,
};

/* --- platform device ----------------------------------------------------- */

/**
 * struct iocard_sim_entry - a virtual card created by iocard
 * @node: entry in iocard_sims
 * @pdev: its platform device
 * @board_idx: index into iocard_boards
 */
struct iocard_sim_entry {
	struct list_head node;
	struct platform_device *pdev;
	unsigned int board_idx;
};

/*
 * The device of the card being created: set by iocard_sim_create() around
 * platform_device_add(), which probes synchronously (the driver forces it).
 * The probe takes only this device, so a foreign platform device bound to
 * the driver through driver_override (or one that happens to be called
 * "iocard-sim") is refused instead of having its platform data read as a
 * board.
 */
static struct platform_device *iocard_sim_adding;
static unsigned int iocard_sim_adding_board;	/* its board index */

static int iocard_sim_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct iocard_sim *sim;
	struct iocard *card;
	char location[16];
	unsigned int i;
	int ret;

	/* Only a pointer compared: another device's probe may race a create. */
	if (READ_ONCE(iocard_sim_adding) != pdev ||
	    iocard_sim_adding_board >= iocard_nboards)
		return dev_err_probe(dev, -ENODEV,
				     "not a virtual card created by iocard\n");
	sim = devm_kzalloc(dev, sizeof(*sim), GFP_KERNEL);
	if (!sim)
		return -ENOMEM;
	raw_spin_lock_init(&sim->lock);
	sim->board = &iocard_boards[iocard_sim_adding_board];
	sim->irq_work = IRQ_WORK_INIT_HARD(iocard_sim_irq);
	for (i = 0; i < I8255_MAX_CHIPS; i++)
		sim->cw[i] = I8255_CW_ALL_IN;	/* the 8255's reset state */
	sim_count(sim, false);
	/*
	 * No irq_work_sync() of its own: the irq_work is queued only while
	 * STAT & EN is set, EN is 0 until a line interrupt is unmasked on
	 * the gpiochip and stays 0 once the card is dying, and the core's
	 * quiesce step (registered after the gpiochip, so it runs before the
	 * card and this model are freed) sets dying, clears EN, then syncs
	 * the irq_work through iocard_sim_quiesce().
	 */
	card = iocard_alloc(dev, sim->board, &iocard_sim_ops, sim, pdev->id);
	if (IS_ERR(card))
		return PTR_ERR(card);
	sim->card = card;
	sim->nlines = card->gc.ngpio;
	platform_set_drvdata(pdev, card);
	snprintf(location, sizeof(location), "sim:%d", pdev->id);
	ret = iocard_publish(card, location, &iocard_sim_group);
	if (ret)
		return ret;
	ret = iocard_add_gpiochip(card);
	if (ret)
		return ret;
	return iocard_start(card);
}

static struct platform_driver iocard_sim_driver = {
	.driver = {
		.name = IOCARD_SIM_DRIVER,
		.suppress_bind_attrs = true,
		.probe_type = PROBE_FORCE_SYNCHRONOUS,
	},
	.probe = iocard_sim_probe,
};

static LIST_HEAD(iocard_sims);
static unsigned int iocard_nsims;
static DEFINE_MUTEX(iocard_sims_lock);
static bool iocard_sims_closed = true;

/*
 * A card number: plain decimal, no sign, no leading zero (kstrtoint() also
 * takes "+7" and "007", which would name card 7).
 */
static int iocard_sim_parse_id(const char *s, int *id)
{
	if (!isdigit(s[0]) || (s[0] == '0' && s[1]))
		return -EINVAL;
	return kstrtoint(s, 10, id);
}

/* Lock held. Create a virtual card; @id < 0 picks the lowest free number. */
static int iocard_sim_create(const struct iocard_board *board, int id)
{
	struct iocard_sim_entry *e;
	int ret;

	if (iocard_sims_closed)
		return -ENODEV;
	if (iocard_nsims >= iocard_sim_max) {
		pr_warn_ratelimited("sim: %u virtual cards exist, max_sims=%u: no more\n",
				    iocard_nsims, iocard_sim_max);
		return -ENOSPC;
	}
	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->board_idx = board - iocard_boards;

	ret = iocard_id_get(id);
	if (ret < 0) {
		kfree(e);
		return ret == -ENOSPC ? -EBUSY : ret;
	}
	id = ret;

	e->pdev = platform_device_alloc(IOCARD_SIM_DRIVER, id);
	if (!e->pdev) {
		ret = -ENOMEM;
		goto err;
	}
	iocard_sim_adding_board = e->board_idx;
	WRITE_ONCE(iocard_sim_adding, e->pdev);
	ret = platform_device_add(e->pdev);
	WRITE_ONCE(iocard_sim_adding, NULL);
	if (ret) {
		platform_device_put(e->pdev);
		goto err;
	}
	if (!e->pdev->dev.driver) {
		/* The probe failed and said why in the log. */
		platform_device_unregister(e->pdev);
		ret = -EIO;
		goto err;
	}
	list_add_tail(&e->node, &iocard_sims);
	iocard_nsims++;
	return id;

err:
	iocard_id_put(id);
	kfree(e);
	return ret;
}

/* Lock held. */
static void iocard_sim_destroy(struct iocard_sim_entry *e)
{
	int id = e->pdev->id;

	list_del(&e->node);
	iocard_nsims--;
	platform_device_unregister(e->pdev);
	iocard_id_put(id);
	kfree(e);
}

/**
 * iocard_sim_new() - handle a write to /sys/class/iocard/new_sim
 * @buf: "MODEL" or "MODEL N"
 * @len: length of @buf
 *
 * Return: the new card's number, or -EINVAL (bad text, unknown model),
 * -EBUSY (number taken), -ENOSPC (max_sims cards exist) or another
 * negative errno.
 */
int iocard_sim_new(const char *buf, size_t len)
{
	const struct iocard_board *board;
	char text[64], *model, *num;
	int id = -1, ret;

	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	num = strim(text);
	model = strsep(&num, " ");
	if (num) {
		num = skip_spaces(num);
		if (iocard_sim_parse_id(num, &id))
			return -EINVAL;
	}
	board = iocard_board_by_name(model, strlen(model));
	if (!board)
		return -EINVAL;

	mutex_lock(&iocard_sims_lock);
	ret = iocard_sim_create(board, id);
	mutex_unlock(&iocard_sims_lock);
	return ret;
}

/**
 * iocard_sim_delete() - handle a write to /sys/class/iocard/delete_sim
 * @buf: "iocardN", a virtual card
 * @len: length of @buf
 *
 * A card in use goes too: its users' requests fail from then on.
 *
 * Return: 0, -EINVAL (bad text) or -ENODEV (no such virtual card).
 */
int iocard_sim_delete(const char *buf, size_t len)
{
	struct iocard_sim_entry *e;
	char text[32], *name;
	int id, ret = -ENODEV;

	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	name = strim(text);
	if (strncmp(name, "iocard", 6) || iocard_sim_parse_id(name + 6, &id))
		return -EINVAL;

	mutex_lock(&iocard_sims_lock);
	list_for_each_entry(e, &iocard_sims, node) {
		struct iocard *card = platform_get_drvdata(e->pdev);

		if (e->pdev->id != id)
			continue;
		if (card)
			iocard_claim_removal(card);
		iocard_sim_destroy(e);
		ret = 0;
		break;
	}
	mutex_unlock(&iocard_sims_lock);
	return ret;
}

/* Walks the models named in sim=, creating a card for each if @create. */
static int iocard_sim_parse(bool create)
{
	const char *p = iocard_sim_param;
	unsigned int n = 0;
	int ret;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		const struct iocard_board *board;

		board = iocard_board_by_name(p, len);
		if (!board) {
			pr_err("sim: unknown model \"%.*s\"\n", (int)len, p);
			return -EINVAL;
		}
		if (++n > IOCARD_SIM_MAX_PARAM) {
			pr_err("sim: more than %d cards\n",
			       IOCARD_SIM_MAX_PARAM);
			return -EINVAL;
		}
		if (n > iocard_sim_max) {
			pr_err("sim: more than max_sims=%u cards\n",
			       iocard_sim_max);
			return -EINVAL;
		}
		if (create) {
			ret = iocard_sim_create(board, -1);
			if (ret < 0)
				return ret;
		}
		p += len;
		if (*p == ',') {
			p++;
			if (!*p) {
				pr_err("sim: empty model name\n");
				return -EINVAL;
			}
		}
	}
	return 0;
}

/**
 * iocard_sim_check_param() - validate sim= before anything is registered
 *
 * Return: 0, or -EINVAL after saying what is wrong.
 */
int iocard_sim_check_param(void)
{
	const char *prev = "";
	unsigned int i;
	size_t len = 0;
	char *list;
	int ret;

	if (!iocard_sim_max || iocard_sim_max > IOCARD_SIM_MAX_LIMIT) {
		pr_err("max_sims=%u out of range 1..%u\n", iocard_sim_max,
		       IOCARD_SIM_MAX_LIMIT);
		return -EINVAL;
	}
	ret = iocard_sim_parse(false);
	if (!ret)
		return 0;
	list = kzalloc(PAGE_SIZE, GFP_KERNEL);
	if (!list)
		return ret;
	for (i = 0; i < iocard_nboards; i++) {
		/* Variants of one board share its name. */
		if (!strcmp(iocard_boards[i].name, prev) ||
		    !iocard_board_simulated(&iocard_boards[i]))
			continue;
		prev = iocard_boards[i].name;
		len += scnprintf(list + len, PAGE_SIZE - len, " %s", prev);
	}
	pr_err("sim: known models:%s\n", list);
	kfree(list);
	return ret;
}

int iocard_sim_init(void)
{
	int ret;

	ret = platform_driver_register(&iocard_sim_driver);
	if (ret)
		return ret;
	mutex_lock(&iocard_sims_lock);
	iocard_sims_closed = false;
	ret = iocard_sim_parse(true);
	mutex_unlock(&iocard_sims_lock);
	if (ret) {
		pr_err("sim: cannot create virtual cards: %d\n", ret);
		iocard_sim_exit();
	}
	return ret;
}

void iocard_sim_exit(void)
{
	struct iocard_sim_entry *e, *tmp;

	mutex_lock(&iocard_sims_lock);
	iocard_sims_closed = true;
	list_for_each_entry_safe_reverse(e, tmp, &iocard_sims, node)
		iocard_sim_destroy(e);
	mutex_unlock(&iocard_sims_lock);
	platform_driver_unregister(&iocard_sim_driver);
}
