/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iocard: digital I/O cards as gpiochips - private definitions.
 *
 * A card is a set of ports. A port is a run of lines that live in one
 * register and share one direction (an 8255 port or half port, the input
 * or the output word of a change-of-state board). The core drives every
 * card through the same code; only the register accessors differ between a
 * PCI board (MMIO or I/O ports) and a virtual card (a register-level model
 * in memory).
 */
#ifndef IOCARD_H
#define IOCARD_H

#include <linux/bitmap.h>
#include <linux/bits.h>
#include <linux/device.h>
#include <linux/gpio/driver.h>
#include <linux/hrtimer.h>
#include <linux/interrupt.h>
#include <linux/irq_work.h>
#include <linux/mod_devicetable.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#define IOCARD_VERSION		"0.2.0"

#define IOCARD_MAX_LINES	128	/* five 8255s are 120 lines */
#define IOCARD_MAX_PORTS	20	/* four per 8255 */
#define IOCARD_REG_SPACE	32	/* bytes of register space modelled */

/* Scan period limits and default, in microseconds. */
#define IOCARD_SCAN_MIN_US	100
#define IOCARD_SCAN_MAX_US	1000000
#define IOCARD_SCAN_DEFAULT_US	1000

/* Port capabilities. */
#define IOCARD_IN		BIT(0)
#define IOCARD_OUT		BIT(1)
#define IOCARD_IO		(IOCARD_IN | IOCARD_OUT)

struct iocard;
struct iocard_model;

/**
 * struct iocard_board - one entry of the board table
 * @name: model name, shown in sysfs and used by the sim= parameter
 * @vendor: manufacturer, or "virtual" for a model without real hardware
 * @model: register model, how the core drives the board
 * @bar: PCI BAR holding the registers
 * @reg_width: register width in bytes (1 or 4)
 * @chips: number of 8255 PPIs (I8255 model only)
 * @mite: the board has an NI MITE bridge whose I/O window needs opening
 * @ivshmem: the board is the PCI test board on QEMU's ivshmem-doorbell
 *	(doorbell and INTx status in BAR0, MSI-X or INTx), bound only
 *	through driver_override
 */
struct iocard_board {
	const char *name;
	const char *vendor;
	const struct iocard_model *model;
	u8 bar;
	u8 reg_width;
	u8 chips;
	bool mite;
	bool ivshmem;
};

/**
 * struct iocard_ops - register accessors of one kind of card
 * @read: read the register at byte offset @reg; called with &iocard.lock
 *	held and interrupts off, must not sleep
 * @write: write the register at byte offset @reg; same context as @read
 * @quiesce: optional; called at removal after the card stopped raising
 *	interrupts, waits until no interrupt of the card is in flight. Called
 *	in process context without &iocard.lock (it may spin on a handler
 *	running on another CPU), possibly more than once.
 * @gone: optional; true when the card no longer answers (surprise removal:
 *	its registers read all-ones). Asked by the COS handler, in hard irq
 *	context with &iocard.lock held, when the status reads all-ones.
 * @changes: optional; reads the register at @reg as @read does and, in the
 *	same instant, the change counter of each of its bits into @counts
 *	(@counts[n]: how often bit n changed level since the card was made,
 *	wrapping). Virtual cards count every change applied to their pins,
 *	so the core knows how many changes came between two reads of a line.
 *	Same context as @read.
 */
struct iocard_ops {
	u32 (*read)(struct iocard *card, unsigned int reg);
	void (*write)(struct iocard *card, unsigned int reg, u32 val);
	void (*quiesce)(struct iocard *card);
	bool (*gone)(struct iocard *card);
	u32 (*changes)(struct iocard *card, unsigned int reg, u32 *counts);
};

/**
 * struct iocard_model - register model: how the core drives a kind of board
 * @layout: fill in the ports of a card (with &iocard.board set and no
 *	ports yet) from its board table entry, and &iocard.cos_hw and
 *	&iocard.cos_port. Returns 0, or -EINVAL for a board the model cannot
 *	describe.
 * @hw_init: put the card into its start state
 * @hw_restore: load the registers again from the driver's state (port
 *	directions, output shadows, COS registers) after the board lost them
 *	(resume, reset)
 * @set_port_dir: switch the direction of an IOCARD_IO port (index into
 *	&iocard.ports), true for output; updates the port's &iocard_port.out.
 *	Needed by models whose layout has IOCARD_IO ports, NULL otherwise.
 * @cos_program: load the COS registers from the irq masks, the enable
 *	from iocard_cos_lines() (off until the card is started and once it
 *	is dying); models with COS interrupts (&iocard.cos_hw) only, as are
 *	the next two
 * @cos_ack: drop latched changes of some lines, bit n for line n of the
 *	COS port
 * @cos_edges: optional, for models that count changes instead of latching
 *	selected edges: of the lines @cos_status_ack reported (and the core
 *	kept), those whose changes include an edge the line's user asked
 *	for; @n[bit] is set to how many such edges line bit had (see
 *	iocard_edges_of())
 * @cos_status_ack: read and acknowledge latched changes; returns the
 *	status bits that were set, bit n for line n of the COS port; U32_MAX
 *	when the registers read all-ones, which may be a card that is gone
 *	(the core then asks &iocard_ops.gone before using it). The core masks
 *	the result with the lines whose COS is enabled.
 *
 * @reg_len: bytes of the register BAR the model uses on @board (checked
 *	against the BAR's length at probe)
 *
 * All but @layout and @reg_len are called with &iocard.lock held and must
 * not sleep.
 */
struct iocard_model {
	int (*layout)(struct iocard *card);
	unsigned int (*reg_len)(const struct iocard_board *board);
	void (*hw_init)(struct iocard *card);
	void (*hw_restore)(struct iocard *card);
	void (*set_port_dir)(struct iocard *card, unsigned int port, bool out);
	void (*cos_program)(struct iocard *card);
	void (*cos_ack)(struct iocard *card, u32 bits);
	u32 (*cos_edges)(struct iocard *card, u32 changed, u32 *n);
	u32 (*cos_status_ack)(struct iocard *card);
};

/**
 * struct iocard_port - a group of lines in one register with one direction
 * @name: port name, line names are @name followed by the bit number
 * @reg: byte offset of the data register
 * @shift: bit of the register holding the port's first line
 * @width: number of lines
 * @caps: IOCARD_IN, IOCARD_OUT or both
 * @first: gpio offset of the port's first line
 * @out: current direction (fixed for ports that are not IOCARD_IO)
 * @locked: the administrator fixed @out (sysfs port_lock) [lock]
 */
struct iocard_port {
	char name[8];
	u8 reg;
	u8 shift;
	u8 width;
	u8 caps;
	u8 first;
	bool out;
	bool locked;
};

/**
 * struct iocard - one card, real or virtual
 * @dev: the bus device (PCI function or virtual card platform device)
 * @board: board table entry
 * @ops: register accessors
 * @priv: accessor data (mapped BAR or register model)
 * @lock: protects registers, shadows and the fields marked [lock]; taken
 *	from hard irq context, hence raw (PREEMPT_RT)
 * @gc: the gpiochip
 * @nports: number of ports
 * @ports: port layout, in gpio offset order [lock for @out]
 * @line_port: index into @ports of each line
 * @shadow: last value written to each data register [lock]
 * @ctrl: last value written to each 8255 control register [lock]
 * @requested: lines requested through gpiolib
 * @cos_hw: the board raises change-of-state interrupts itself
 * @cos_port: index of the port whose lines the COS registers cover
 * @irq_enabled: lines whose interrupt is unmasked [lock]
 * @irq_used: lines whose interrupt is requested [lock]
 * @irq_handed: lines of @irq_used that gpiolib no longer counts as
 *	interrupts: handed over to iocard when the removal started, so that
 *	gpiochip_remove() frees none of them (iocard_quiesce()) [lock]
 * @irq_rise: lines that want rising edges [lock]
 * @irq_fall: lines that want falling edges [lock]
 * @scan_prev: level of each line at the previous scan [lock]
 * @scan_timer: software change-of-state scanner
 * @scan_period: scanner period [lock]
 * @scan_active: @scan_timer is queued or running [lock]
 * @started: the bus interrupt is set up, COS may be enabled [lock]
 * @dying: removal started, no more interrupts are raised [lock]
 * @detached: the bus device is gone with its registers: nothing may touch
 *	them any more [lock]
 * @closing: removal was requested, no more line requests [lock]
 * @spurious: interrupts that found no status bit set
 * @cos_off: lines of the COS port whose COS was turned off for chattering,
 *	until their interrupt is unmasked again [lock]
 * @cos_max_rate: chatter guard of this card, changes per second of one
 *	line (0: no guard); from the module parameter, set in sysfs [lock]
 * @cos_window: start of the current rate window of the chatter guard [lock]
 * @cos_count: changes of each COS line in the current window [lock]
 * @chatter: lines turned off by the chatter guard, in total
 * @cos_seen: per COS line, the change count last acknowledged (models with
 *	change counters instead of a latched status) [lock]
 * @cos_delta: per COS line, the changes counted by the last acknowledge
 *	(models with change counters) [lock]
 * @irq_busy: lines whose interrupt was raised and whose handler has not
 *	finished: the flow handler keeps the line masked until gpiolib's irq
 *	thread has made the event [lock]
 * @pend: per line, changes its user asked for that came while the line was
 *	busy; raised as one event when it is done [lock]
 * @lost: per line, changes its user asked for that became no event, since
 *	its interrupt was last enabled [lock]
 * @chg_seen: per line, the change counter last accounted (cards with
 *	&iocard_ops.changes) [lock]
 * @reraise_work: raises the lines with @pend once they are no longer busy
 * @notify_work: wakes the pollers of the sysfs attribute "lost"
 * @lost_kn: that attribute, while the class device is there [lock]
 * @safe_state: output levels applied at removal [lock]
 * @safe_valid: @safe_state is set [lock]
 * @id: card number, the N of /sys/class/iocard/iocardN
 * @cdev: the class device
 * @name: "iocardN", also the gpiochip label
 * @location: bus location shown in sysfs
 * @chip_name: device name of the gpiochip
 * @groups: attribute groups of the class device
 * @domain: irq domain of the lines, the card's own (see iocard_add_gpiochip())
 * @refs: one for the bus binding, one per line interrupt requested
 * @release_work: frees the domain and the card after the last reference
 * @gpio_dev: the gpiochip's gpio_device, held until the chip is removed
 *	(kernels whose gpiolib cannot remove a chip in use)
 * @orphaned: the chip is removed; lines still requested keep references
 *	that gpiolib never drops [lock]
 * @keep_names: the removed chip's gpio_device outlives the card: its line
 *	names stay allocated
 */
struct iocard {
	struct device *dev;
	const struct iocard_board *board;
	const struct iocard_ops *ops;
	void *priv;
	raw_spinlock_t lock;
	struct gpio_chip gc;

	unsigned int nports;
	struct iocard_port ports[IOCARD_MAX_PORTS];
	u8 line_port[IOCARD_MAX_LINES];
	u32 shadow[IOCARD_REG_SPACE];
	u8 ctrl[IOCARD_REG_SPACE];
	DECLARE_BITMAP(requested, IOCARD_MAX_LINES);

	bool cos_hw;
	unsigned int cos_port;
	DECLARE_BITMAP(irq_enabled, IOCARD_MAX_LINES);
	DECLARE_BITMAP(irq_used, IOCARD_MAX_LINES);
	DECLARE_BITMAP(irq_handed, IOCARD_MAX_LINES);
	DECLARE_BITMAP(irq_rise, IOCARD_MAX_LINES);
	DECLARE_BITMAP(irq_fall, IOCARD_MAX_LINES);
	DECLARE_BITMAP(scan_prev, IOCARD_MAX_LINES);
	struct hrtimer scan_timer;
	ktime_t scan_period;
	bool scan_active;
	bool started;
	bool dying;
	bool detached;
	bool closing;
	atomic_long_t spurious;
	u32 cos_off;
	unsigned int cos_max_rate;
	ktime_t cos_window;
	u32 cos_count[32];
	atomic_long_t chatter;
	u32 cos_seen[32];
	u32 cos_delta[32];
	DECLARE_BITMAP(irq_busy, IOCARD_MAX_LINES);
	u64 pend[IOCARD_MAX_LINES];
	u64 lost[IOCARD_MAX_LINES];
	u32 chg_seen[IOCARD_MAX_LINES];
	struct irq_work reraise_work;
	struct irq_work notify_work;
	struct kernfs_node *lost_kn;

	DECLARE_BITMAP(safe_state, IOCARD_MAX_LINES);
	bool safe_valid;

	int id;
	struct device *cdev;
	char name[24];
	char location[48];
	char chip_name[32];
	const struct attribute_group *groups[3];

	struct irq_domain *domain;
	refcount_t refs;
	struct work_struct release_work;
	struct device *gpio_dev;
	bool orphaned;
	bool keep_names;
};

/* iocard-boards.c: the board table and the register models */
extern const struct iocard_board iocard_boards[];
extern const unsigned int iocard_nboards;
extern const struct pci_device_id iocard_pci_ids[];
extern const struct pci_device_id iocard_pci_test_ids[];
extern const struct iocard_model iocard_i8255_model;
extern const struct iocard_model iocard_cos32_model;
extern const struct iocard_model iocard_testb_model;
bool iocard_board_simulated(const struct iocard_board *board);
const struct iocard_board *iocard_board_by_name(const char *name, size_t len);

/*
 * Intel 8255A Programmable Peripheral Interface, mode 0 only.
 * Source: Intel 8255A/8255A-5 data sheet (order number 231308), "Mode
 * Definition Format", "Bit Set/Reset Format" and "Basic Mode 0 Operation".
 * Four registers per PPI, used by the model (iocard-boards.c) and the
 * virtual card (iocard-sim.c):
 *
 *   +0  port A      8 lines, one direction
 *   +1  port B      8 lines, one direction
 *   +2  port C      bits 7..4 (C upper) and 3..0 (C lower), one direction
 *                   per half
 *   +3  control     write only
 *
 * Control word with D7 = 1 (mode set):
 *   D7     1 = mode set flag
 *   D6..5  group A mode, 00 = mode 0
 *   D4     port A:        1 = input, 0 = output
 *   D3     port C upper:  1 = input, 0 = output
 *   D2     group B mode,  0 = mode 0
 *   D1     port B:        1 = input, 0 = output
 *   D0     port C lower:  1 = input, 0 = output
 * Control word with D7 = 0 (bit set/reset of port C):
 *   D3..1  bit of port C
 *   D0     1 = set, 0 = reset
 */
#define I8255_SIZE		4
#define I8255_PORT_A		0
#define I8255_PORT_B		1
#define I8255_PORT_C		2
#define I8255_CTRL		3

#define I8255_CW_MODE_SET	BIT(7)
#define I8255_CW_A_IN		BIT(4)
#define I8255_CW_CU_IN		BIT(3)
#define I8255_CW_B_IN		BIT(1)
#define I8255_CW_CL_IN		BIT(0)
/* Every port input, mode 0: the chip's reset state. */
#define I8255_CW_ALL_IN		(I8255_CW_MODE_SET | I8255_CW_A_IN | \
				 I8255_CW_CU_IN | I8255_CW_B_IN | \
				 I8255_CW_CL_IN)
#define I8255_CW_BSR_BIT	GENMASK(3, 1)
#define I8255_CW_BSR_SET	BIT(0)

/*
 * COS32: iocard's change-of-state board model (why it is iocard's own:
 * iocard-boards.c; ABI.md). Used by the model (iocard-boards.c) and the
 * virtual card (iocard-sim.c). All registers are 32 bits wide:
 *
 *   0x00 IN    R    input levels, bit n = line INn
 *   0x04 OUT   RW   output latch, reads back, bit n = line OUTn
 *   0x08 EN    RW   COS enable per input
 *   0x0c RISE  RW   latch a rising edge of input n
 *   0x10 FALL  RW   latch a falling edge of input n (RISE|FALL = both)
 *   0x14 STAT  R    latched changes; the interrupt is asserted while
 *                   STAT & EN is not zero
 *   0x18 ACK   W    write 1 to clear STAT bits
 *   0x1c ID    R    0x10c05032
 */
#define COS32_IN		0x00
#define COS32_OUT		0x04
#define COS32_EN		0x08
#define COS32_RISE		0x0c
#define COS32_FALL		0x10
#define COS32_STAT		0x14
#define COS32_ACK		0x18
#define COS32_ID		0x1c
#define COS32_ID_VALUE		0x10c05032
#define COS32_LINES		32

/*
 * The PCI test board: COS32's lines (IN0..IN31, OUT0..OUT31) on QEMU's
 * ivshmem-doorbell device (PCI 1af4:1110), whose far end is libio's host
 * model in tests/vm; the layout is agreed with that model. For tests only:
 * bound through driver_override, never by ID (the ID is QEMU's, used for
 * any shared memory), and only when BAR2 holds the ID word.
 *
 * BAR0, QEMU's ivshmem registers (QEMU docs/specs/ivshmem-spec), 32 bits:
 *   0x00 IntrMask     INTx enable, bit 0
 *   0x04 IntrStatus   INTx only; reading returns and clears it
 *   0x08 IVPosition   the guest's own peer ID (>= 1)
 *   0x0c Doorbell     write (peer << 16) | vector to interrupt that peer;
 *                     the host model is peer 0 with one vector
 *
 * BAR2, 4096 bytes of shared memory, little-endian 32-bit words, each
 * written by one side only:
 *   0x000  ID      host   TESTB_ID_VALUE while the board is present,
 *                         all-ones when it is gone
 *   0x004  IN      host   input levels, bit n = INn
 *   0x008  OUT     guest  output levels, bit n = OUTn
 *   0x00c  EN      guest  change-of-state enable, bit n for INn
 *   0x010  WSEQ    guest  bumped after every write to OUT or EN, after
 *                         which the driver rings the host's doorbell
 *   0x080 + 4n  CHG[n]  host  changes of INn since the board started
 *                         (wraps), counted whether enabled or not
 *
 * The host raises the interrupt when a change hits an enabled line. The
 * status is kept without a shared read-modify-write: the driver keeps, per
 * line, the CHG value it last acknowledged (&iocard.cos_seen); status bit n
 * is EN bit n and CHG[n] != seen[n]; acknowledging sets seen[n] to the CHG
 * value read (later changes stay pending); enabling a line first sets
 * seen[n] = CHG[n]. No edge selects: the driver tells rising from falling
 * from the level and the number of changes.
 */
#define IVSHMEM_INTR_MASK	0x00
#define IVSHMEM_INTR_STATUS	0x04
#define IVSHMEM_DOORBELL	0x0c
#define IVSHMEM_REGS_LEN	16
/* Doorbell value that rings the host model: peer 0, vector 0. */
#define IVSHMEM_DOORBELL_HOST	((0 << 16) | 0)

#define TESTB_ID		0x000
#define TESTB_IN		0x004
#define TESTB_OUT		0x008
#define TESTB_EN		0x00c
#define TESTB_WSEQ		0x010
#define TESTB_CHG(n)		(0x080 + 4 * (n))
#define TESTB_ID_VALUE		0x494f4342	/* "BCOI" in memory */
#define TESTB_LEN		4096
#define TESTB_LINES		32

/* iocard-core.c: the library the bus parts build cards with */
struct iocard *iocard_alloc(struct device *dev,
			    const struct iocard_board *board,
			    const struct iocard_ops *ops, void *priv, int id);
int iocard_add_gpiochip(struct iocard *card);
int iocard_start(struct iocard *card);
int iocard_publish(struct iocard *card, const char *location,
		   const struct attribute_group *extra);
irqreturn_t iocard_cos_irq(struct iocard *card);
void iocard_restore(struct iocard *card);
void iocard_shutdown(struct iocard *card);
u32 iocard_cos_lines(struct iocard *card);
u32 iocard_edges_of(struct iocard *card, unsigned int line, u32 changes,
		    bool level);
void iocard_claim_removal(struct iocard *card);
int iocard_parse_bitmap(const char *buf, size_t count, unsigned long *map,
			unsigned int nbits);
int iocard_id_get(int want);
void iocard_id_put(int id);
/* For the module's init and exit (iocard-main.c). */
int iocard_core_check_param(void);
int iocard_core_init(const struct attribute_group **class_groups);
void iocard_core_exit(void);

/* iocard-pci.c and iocard-sim.c: for iocard-main.c */
int iocard_pci_init(void);
void iocard_pci_exit(void);
int iocard_sim_check_param(void);
int iocard_sim_init(void);
void iocard_sim_exit(void);
int iocard_sim_new(const char *buf, size_t len);
int iocard_sim_delete(const char *buf, size_t len);

/**
 * iocard_map_get() - a slice of a bitmap as an integer
 * @map: the bitmap
 * @first: bit of @map that becomes bit 0 of the result
 * @width: number of bits, 1..32; bits @first..@first + @width - 1 must lie
 *	inside @map
 *
 * Return: bits @first..@first + @width - 1 of @map as bits 0..@width - 1.
 */
static inline u32 iocard_map_get(const unsigned long *map, unsigned int first,
				 unsigned int width)
{
	unsigned int i;
	u32 val = 0;

	for (i = 0; i < width; i++)
		if (test_bit(first + i, map))
			val |= BIT(i);
	return val;
}

/**
 * iocard_map_set() - set a slice of a bitmap from an integer
 * @map: the bitmap
 * @first: bit of @map that takes bit 0 of @val
 * @width: number of bits, 1..32, inside @map
 * @val: the bits
 */
static inline void iocard_map_set(unsigned long *map, unsigned int first,
				  unsigned int width, u32 val)
{
	unsigned int i;

	for (i = 0; i < width; i++)
		__assign_bit(first + i, map, val & BIT(i));
}

static inline u32 iocard_read(struct iocard *card, unsigned int reg)
{
	return card->ops->read(card, reg);
}

static inline void iocard_write(struct iocard *card, unsigned int reg, u32 val)
{
	card->ops->write(card, reg, val);
}

#endif /* IOCARD_H */
