// SPDX-License-Identifier: GPL-2.0
/*
 * iocard: board table and register models.
 *
 * One entry per board. The PCI ID table points at an entry through
 * driver_data. An entry points at its register model, the table of
 * functions through which the core drives the board (struct iocard_model).
 * Each model's register map in iocard.h names the public document it was
 * written from.
 */

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/string.h>

#include "iocard.h"

/*
 * Intel 8255 PPI, mode 0 (register map and control word in iocard.h).
 * A mode set clears every output latch of the PPI. The core restores the
 * latches right after it (a glitch of a few bus cycles on the other output
 * ports of the same PPI, documented in ABI.md). The control register
 * cannot be read back: at probe every port is set to input, the chip's
 * reset state.
 */

/* Port order inside one PPI, which is also the gpio offset order. */
enum { I8255_A, I8255_B, I8255_CL, I8255_CH, I8255_NPORTS };

/*
 * COS32: iocard's change-of-state board model (register map in iocard.h).
 * No public PCI board with a documented COS register map and without a
 * mainline driver was found (the ACCES PCI-IDIO-16 has one, and
 * gpio-pci-idio-16 drives it), so this model is iocard's own, defined in
 * iocard.h and ABI.md, and exists only as a virtual card. It follows the
 * usual shape of isolated-input boards: per-line COS enable, rising and
 * falling selects, a latched status with write-1-to-clear acknowledge, an
 * output latch that reads back. Lines 0..31 are IN0..IN31, 32..63 are
 * OUT0..OUT31.
 */

enum iocard_board_id {
	BOARD_MCC_PCI_DIO24,
	BOARD_MCC_PCI_DIO24H,
	BOARD_MCC_PCI_DIO48H_OLD,
	BOARD_MCC_PCI_DIO48H,
	BOARD_MCC_PCI_DIO96H,
	BOARD_ADLINK_PCI_7224,
	BOARD_ADLINK_PCI_7248,
	BOARD_ADLINK_PCI_7296,
	BOARD_NI_PCI_6503,
	BOARD_NI_PCI_6503B,
	BOARD_NI_PCI_6503X,
	BOARD_NI_PXI_6503,
	BOARD_NI_PCI_DIO_96,
	BOARD_NI_PCI_DIO_96B,
	BOARD_NI_PXI_6508,
	BOARD_VIRTUAL_DIO120,
	BOARD_VIRTUAL_COS32,
	BOARD_TEST_IVSHMEM_COS32,
	BOARD_COUNT,
};

/*
 * PCI IDs and BARs: the manufacturers' user manuals (register maps) as
 * cited per group, cross-checked against the ID table of Linux's comedi
 * driver 8255_pci (drivers/comedi/drivers/8255_pci.c), which claims the
 * same boards; see "Which driver binds a board" in README.md.
 */
const struct iocard_board iocard_boards[] = {
	/*
	 * Measurement Computing PCI-DIO24, PCI-DIO24H, PCI-DIO48H,
	 * PCI-DIO96H user's guides, "Register architecture": 8255s at
	 * +0, +4, +8, +12 of I/O BAR2 (BAR1 on the early PCI-DIO48H that
	 * has no subsystem ID).
	 */
	[BOARD_MCC_PCI_DIO24] = {
		.name = "mcc-pci-dio24", .vendor = "Measurement Computing",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 1,
	},
	[BOARD_MCC_PCI_DIO24H] = {
		.name = "mcc-pci-dio24h", .vendor = "Measurement Computing",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 1,
	},
	[BOARD_MCC_PCI_DIO48H_OLD] = {
		.name = "mcc-pci-dio48h", .vendor = "Measurement Computing",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 2,
	},
	[BOARD_MCC_PCI_DIO48H] = {
		.name = "mcc-pci-dio48h", .vendor = "Measurement Computing",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 2,
	},
	[BOARD_MCC_PCI_DIO96H] = {
		.name = "mcc-pci-dio96h", .vendor = "Measurement Computing",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 4,
	},
	/*
	 * ADLINK PCI-7224/7248/7296 user's guide, "Registers": 8255s at
	 * +0, +4, +8, +12 of I/O BAR2.
	 */
	[BOARD_ADLINK_PCI_7224] = {
		.name = "adlink-pci-7224", .vendor = "ADLINK",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 1,
	},
	[BOARD_ADLINK_PCI_7248] = {
		.name = "adlink-pci-7248", .vendor = "ADLINK",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 2,
	},
	[BOARD_ADLINK_PCI_7296] = {
		.name = "adlink-pci-7296", .vendor = "ADLINK",
		.model = &iocard_i8255_model, .bar = 2, .reg_width = 1,
		.chips = 4,
	},
	/*
	 * National Instruments PCI-DIO-96/PXI-6508/PCI-6503 user manual,
	 * register-level programming: 8255s at +0, +4, +8, +12 of the
	 * memory BAR1, behind the MITE PCI bridge in BAR0 whose I/O device
	 * window register (0xc0) must be loaded with BAR1's bus address |
	 * 0x80 (window enable) first, as comedi's mite code also does.
	 */
	[BOARD_NI_PCI_6503] = {
		.name = "ni-pci-6503", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 1, .mite = true,
	},
	[BOARD_NI_PCI_6503B] = {
		.name = "ni-pci-6503b", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 1, .mite = true,
	},
	[BOARD_NI_PCI_6503X] = {
		.name = "ni-pci-6503x", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 1, .mite = true,
	},
	[BOARD_NI_PXI_6503] = {
		.name = "ni-pxi-6503", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 1, .mite = true,
	},
	[BOARD_NI_PCI_DIO_96] = {
		.name = "ni-pci-dio-96", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 4, .mite = true,
	},
	[BOARD_NI_PCI_DIO_96B] = {
		.name = "ni-pci-dio-96b", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 4, .mite = true,
	},
	[BOARD_NI_PXI_6508] = {
		.name = "ni-pxi-6508", .vendor = "National Instruments",
		.model = &iocard_i8255_model, .bar = 1, .reg_width = 1,
		.chips = 4, .mite = true,
	},
	/*
	 * Virtual only: five 8255s (120 lines), the largest layout the
	 * 8255 model supports, so tests cover masks wider than 64 bits.
	 */
	[BOARD_VIRTUAL_DIO120] = {
		.name = "dio120", .vendor = "virtual",
		.model = &iocard_i8255_model, .reg_width = 1, .chips = 5,
	},
	/* Virtual only: the COS32 model described above. */
	[BOARD_VIRTUAL_COS32] = {
		.name = "cos32", .vendor = "virtual",
		.model = &iocard_cos32_model, .reg_width = 4,
	},
	/*
	 * Tests only: the PCI test board on QEMU's ivshmem-doorbell (layout
	 * in iocard.h), COS32's lines with a change-counter status.
	 */
	[BOARD_TEST_IVSHMEM_COS32] = {
		.name = "test-ivshmem-cos32", .vendor = "libio test board",
		.model = &iocard_testb_model, .bar = 2, .reg_width = 4,
		.ivshmem = true,
	},
};

const unsigned int iocard_nboards = ARRAY_SIZE(iocard_boards);

/*
 * Not exported with MODULE_DEVICE_TABLE: comedi's 8255_pci claims every
 * one of these IDs, and two drivers autoloading for one device would race
 * for it. iocard binds a board only through driver_override, or through
 * this table when loaded with claim=1.
 */
const struct pci_device_id iocard_pci_ids[] = {
	{ PCI_VDEVICE(CB, 0x0028), BOARD_MCC_PCI_DIO24 },
	{ PCI_VDEVICE(CB, 0x0014), BOARD_MCC_PCI_DIO24H },
	{ PCI_DEVICE_SUB(PCI_VENDOR_ID_CB, 0x000b, 0x0000, 0x0000),
	  .driver_data = BOARD_MCC_PCI_DIO48H_OLD },
	{ PCI_DEVICE_SUB(PCI_VENDOR_ID_CB, 0x000b, PCI_VENDOR_ID_CB, 0x000b),
	  .driver_data = BOARD_MCC_PCI_DIO48H },
	{ PCI_VDEVICE(CB, 0x0017), BOARD_MCC_PCI_DIO96H },
	{ PCI_VDEVICE(ADLINK, 0x7224), BOARD_ADLINK_PCI_7224 },
	{ PCI_VDEVICE(ADLINK, 0x7248), BOARD_ADLINK_PCI_7248 },
	{ PCI_VDEVICE(ADLINK, 0x7296), BOARD_ADLINK_PCI_7296 },
	{ PCI_VDEVICE(NI, 0x0400), BOARD_NI_PCI_6503 },
	{ PCI_VDEVICE(NI, 0x1250), BOARD_NI_PCI_6503B },
	{ PCI_VDEVICE(NI, 0x17d0), BOARD_NI_PCI_6503X },
	{ PCI_VDEVICE(NI, 0x1800), BOARD_NI_PXI_6503 },
	{ PCI_VDEVICE(NI, 0x0160), BOARD_NI_PCI_DIO_96 },
	{ PCI_VDEVICE(NI, 0x1630), BOARD_NI_PCI_DIO_96B },
	{ PCI_VDEVICE(NI, 0x13c0), BOARD_NI_PXI_6508 },
	{ }
};

/*
 * The test board, reached only through driver_override: never in
 * iocard_pci_ids (not even with claim=1), as QEMU's ivshmem ID is used for
 * unrelated shared memory; its probe also wants the ID word in BAR2.
 */
const struct pci_device_id iocard_pci_test_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110),
	  .driver_data = BOARD_TEST_IVSHMEM_COS32 },
	{ }
};

/* A board a virtual card can model: not the PCI test board. */
bool iocard_board_simulated(const struct iocard_board *board)
{
	return !board->ivshmem;
}

/* Boards a virtual card can model, by name. */
const struct iocard_board *iocard_board_by_name(const char *name, size_t len)
{
	unsigned int i;

	for (i = 0; i < iocard_nboards; i++) {
		if (!iocard_board_simulated(&iocard_boards[i]))
			continue;
		if (strlen(iocard_boards[i].name) == len &&
		    !strncmp(iocard_boards[i].name, name, len))
			return &iocard_boards[i];
	}
	return NULL;
}

static struct iocard_port *iocard_add_port(struct iocard *card,
					   const char *prefix,
					   const char *name, u8 reg, u8 shift,
					   u8 width, u8 caps)
{
	struct iocard_port *port = &card->ports[card->nports];
	unsigned int first = card->gc.ngpio;
	unsigned int i;

	snprintf(port->name, sizeof(port->name), "%s%s", prefix, name);
	port->reg = reg;
	port->shift = shift;
	port->width = width;
	port->caps = caps;
	port->first = first;
	port->out = caps == IOCARD_OUT;
	for (i = 0; i < width; i++)
		card->line_port[first + i] = card->nports;
	card->nports++;
	card->gc.ngpio += width;
	return port;
}

/* --- 8255 ---------------------------------------------------------------- */

/* Four ports per PPI; multi-PPI boards name them P1A.., P2A.. */
static int i8255_layout(struct iocard *card)
{
	const struct iocard_board *board = card->board;
	char prefix[8] = "";
	unsigned int i;
	u8 base;

	if (!board->chips ||
	    board->chips * I8255_NPORTS > IOCARD_MAX_PORTS ||
	    board->chips * I8255_SIZE > IOCARD_REG_SPACE)
		return -EINVAL;
	for (i = 0; i < board->chips; i++) {
		if (board->chips > 1)
			snprintf(prefix, sizeof(prefix), "P%u", i + 1);
		base = i * I8255_SIZE;
		iocard_add_port(card, prefix, "A", base + I8255_PORT_A,
				0, 8, IOCARD_IO);
		iocard_add_port(card, prefix, "B", base + I8255_PORT_B,
				0, 8, IOCARD_IO);
		iocard_add_port(card, prefix, "CL", base + I8255_PORT_C,
				0, 4, IOCARD_IO);
		iocard_add_port(card, prefix, "CH", base + I8255_PORT_C,
				4, 4, IOCARD_IO);
	}
	card->cos_hw = false;
	return 0;
}

/* Write the control word of one PPI, then restore its output latches. */
static void i8255_write_ctrl(struct iocard *card, unsigned int chip)
{
	u8 base = chip * I8255_SIZE;

	iocard_write(card, base + I8255_CTRL, card->ctrl[chip]);
	iocard_write(card, base + I8255_PORT_A, card->shadow[base + I8255_PORT_A]);
	iocard_write(card, base + I8255_PORT_B, card->shadow[base + I8255_PORT_B]);
	iocard_write(card, base + I8255_PORT_C, card->shadow[base + I8255_PORT_C]);
}

/* Every port input (the chip's reset state), latches zero. */
static void i8255_hw_init(struct iocard *card)
{
	unsigned int i;

	for (i = 0; i < card->board->chips; i++) {
		card->ctrl[i] = I8255_CW_ALL_IN;
		i8255_write_ctrl(card, i);
	}
}

/* Control words and output latches from the driver's copies. */
static void i8255_hw_restore(struct iocard *card)
{
	unsigned int i;

	for (i = 0; i < card->board->chips; i++)
		i8255_write_ctrl(card, i);
}

static void i8255_set_port_dir(struct iocard *card, unsigned int port,
			       bool out)
{
	static const u8 in_bit[I8255_NPORTS] = {
		[I8255_A] = I8255_CW_A_IN,
		[I8255_B] = I8255_CW_B_IN,
		[I8255_CL] = I8255_CW_CL_IN,
		[I8255_CH] = I8255_CW_CU_IN,
	};
	unsigned int chip = port / I8255_NPORTS;
	u8 bit = in_bit[port % I8255_NPORTS];

	if (out)
		card->ctrl[chip] &= ~bit;
	else
		card->ctrl[chip] |= bit;
	/* Read without the lock by iocard_gpio_get_direction(). */
	WRITE_ONCE(card->ports[port].out, out);
	i8255_write_ctrl(card, chip);
}

static unsigned int i8255_reg_len(const struct iocard_board *board)
{
	return board->chips * I8255_SIZE;
}

const struct iocard_model iocard_i8255_model = {
	.layout = i8255_layout,
	.reg_len = i8255_reg_len,
	.hw_init = i8255_hw_init,
	.hw_restore = i8255_hw_restore,
	.set_port_dir = i8255_set_port_dir,
};

/* --- COS32 --------------------------------------------------------------- */

static int cos32_layout(struct iocard *card)
{
	iocard_add_port(card, "", "IN", COS32_IN, 0, COS32_LINES, IOCARD_IN);
	iocard_add_port(card, "", "OUT", COS32_OUT, 0, COS32_LINES,
			IOCARD_OUT);
	card->cos_hw = true;
	card->cos_port = 0;
	return 0;
}

/* COS off and acknowledged, output latch read back and kept. */
static void cos32_hw_init(struct iocard *card)
{
	iocard_write(card, COS32_EN, 0);
	iocard_write(card, COS32_RISE, 0);
	iocard_write(card, COS32_FALL, 0);
	iocard_write(card, COS32_ACK, U32_MAX);
	card->shadow[COS32_OUT] = iocard_read(card, COS32_OUT);
}

static void cos32_cos_program(struct iocard *card);

/* Outputs from the shadow, stale status dropped, COS registers loaded. */
static void cos32_hw_restore(struct iocard *card)
{
	iocard_write(card, COS32_OUT, card->shadow[COS32_OUT]);
	iocard_write(card, COS32_ACK, U32_MAX);
	cos32_cos_program(card);
}

static void cos32_cos_program(struct iocard *card)
{
	unsigned int first = card->ports[card->cos_port].first;
	u32 en = iocard_cos_lines(card);

	iocard_write(card, COS32_RISE,
		     iocard_map_get(card->irq_rise, first, COS32_LINES));
	iocard_write(card, COS32_FALL,
		     iocard_map_get(card->irq_fall, first, COS32_LINES));
	iocard_write(card, COS32_EN, en);
}

static void cos32_cos_ack(struct iocard *card, u32 bits)
{
	iocard_write(card, COS32_ACK, bits);
}

/*
 * Write-1-to-clear, then read the status back: the read flushes the posted
 * ACK write, so a level interrupt is deasserted before the handler returns
 * (no second, spurious call). Changes latched since stay for the next one.
 * All-ones may also be a card that is gone: the core asks the bus.
 */
static u32 cos32_cos_status_ack(struct iocard *card)
{
	u32 stat = iocard_read(card, COS32_STAT);

	if (stat) {
		iocard_write(card, COS32_ACK, stat);
		iocard_read(card, COS32_STAT);
	}
	return stat;
}

static unsigned int cos32_reg_len(const struct iocard_board *board)
{
	return COS32_ID + sizeof(u32);
}

const struct iocard_model iocard_cos32_model = {
	.layout = cos32_layout,
	.reg_len = cos32_reg_len,
	.hw_init = cos32_hw_init,
	.hw_restore = cos32_hw_restore,
	.cos_program = cos32_cos_program,
	.cos_ack = cos32_cos_ack,
	.cos_status_ack = cos32_cos_status_ack,
};

/* --- PCI test board ------------------------------------------------------ */

static int testb_layout(struct iocard *card)
{
	iocard_add_port(card, "", "IN", TESTB_IN, 0, TESTB_LINES, IOCARD_IN);
	iocard_add_port(card, "", "OUT", TESTB_OUT, 0, TESTB_LINES,
			IOCARD_OUT);
	card->cos_hw = true;
	card->cos_port = 0;
	return 0;
}

static unsigned int testb_reg_len(const struct iocard_board *board)
{
	return TESTB_LEN;
}

/* Lock held. Acknowledge the changes of @bits counted so far. */
static void testb_snapshot(struct iocard *card, u32 bits)
{
	unsigned long pending = bits;
	unsigned int n;

	for_each_set_bit(n, &pending, TESTB_LINES) {
		card->cos_seen[n] = iocard_read(card, TESTB_CHG(n));
		card->cos_delta[n] = 0;
	}
}

/* COS off, changes so far acknowledged, outputs read back and kept. */
static void testb_hw_init(struct iocard *card)
{
	card->shadow[TESTB_EN] = 0;
	iocard_write(card, TESTB_EN, 0);
	testb_snapshot(card, U32_MAX);
	card->shadow[TESTB_OUT] = iocard_read(card, TESTB_OUT);
}

/*
 * EN from the core's masks. A line being enabled first takes the current
 * count as seen: changes from before are no edges. EN is written (and the
 * host's doorbell rung) only when it changes.
 */
static void testb_cos_program(struct iocard *card)
{
	u32 en = iocard_cos_lines(card), old = card->shadow[TESTB_EN];

	testb_snapshot(card, en & ~old);
	if (en == old)
		return;
	card->shadow[TESTB_EN] = en;
	iocard_write(card, TESTB_EN, en);
}

/* Outputs from the shadow; EN written afresh (its lines' counts taken). */
static void testb_hw_restore(struct iocard *card)
{
	iocard_write(card, TESTB_OUT, card->shadow[TESTB_OUT]);
	card->shadow[TESTB_EN] = 0;
	iocard_write(card, TESTB_EN, 0);
	testb_cos_program(card);
}

static void testb_cos_ack(struct iocard *card, u32 bits)
{
	testb_snapshot(card, bits);
}

/*
 * Status bit n: EN bit n and CHG[n] moved since seen[n]; reading it
 * acknowledges (seen[n] = the CHG value read). U32_MAX, nothing touched,
 * when the ID word is not there (the board is gone).
 */
static u32 testb_cos_status_ack(struct iocard *card)
{
	unsigned long en = card->shadow[TESTB_EN];
	unsigned int n;
	u32 stat = 0, chg;

	if (iocard_read(card, TESTB_ID) != TESTB_ID_VALUE)
		return U32_MAX;
	for_each_set_bit(n, &en, TESTB_LINES) {
		chg = iocard_read(card, TESTB_CHG(n));
		if (chg == card->cos_seen[n])
			continue;
		card->cos_delta[n] = chg - card->cos_seen[n];
		card->cos_seen[n] = chg;
		stat |= BIT(n);
	}
	return stat;
}

/*
 * No edge selects on the board: the edges are told from the number of
 * changes and the level read now, after the counts (a change in between
 * stays pending and brings its own interrupt; with one edge kind selected,
 * it may shift one edge between the two).
 */
static u32 testb_cos_edges(struct iocard *card, u32 changed, u32 *edges)
{
	unsigned int first = card->ports[card->cos_port].first;
	unsigned long pending = changed;
	u32 in = iocard_read(card, TESTB_IN), raise = 0;
	unsigned int n;

	for_each_set_bit(n, &pending, TESTB_LINES) {
		edges[n] = iocard_edges_of(card, first + n, card->cos_delta[n],
					   in & BIT(n));
		if (edges[n])
			raise |= BIT(n);
	}
	return raise;
}

const struct iocard_model iocard_testb_model = {
	.layout = testb_layout,
	.reg_len = testb_reg_len,
	.hw_init = testb_hw_init,
	.hw_restore = testb_hw_restore,
	.cos_program = testb_cos_program,
	.cos_ack = testb_cos_ack,
	.cos_edges = testb_cos_edges,
	.cos_status_ack = testb_cos_status_ack,
};
