// SPDX-License-Identifier: GPL-2.0
/*
 * iocard: PCI glue.
 *
 * Which driver binds a board: comedi's 8255_pci claims the same IDs and is
 * built in Debian's kernels, so iocard exports no PCI aliases (no autoload
 * race) and by default matches no ID by itself. A board goes to iocard
 * when the administrator says so, per device with driver_override, or for
 * every unbound board of the table with claim=1. See README.md.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>

#include "iocard.h"
#include "iocard-compat.h"

static bool iocard_pci_claim;
module_param_named(claim, iocard_pci_claim, bool, 0444);
MODULE_PARM_DESC(claim,
		 "Bind every unbound PCI board of the board table by ID (default: only devices whose driver_override is \"iocard\")");

/* NI MITE bridge: I/O device window base/size register and its enable. */
#define MITE_IODWBSR		0xc0
#define MITE_IODWBSR_WENAB	BIT(7)

/**
 * struct iocard_pci - accessor data of a PCI card
 * @base: mapped register BAR
 * @ivshmem: the test board's mapped BAR0 (ivshmem registers), else NULL
 * @wseq: the test board's WSEQ, last value written [&iocard.lock]
 * @intx: the test board interrupts through INTx (IntrMask set)
 */
struct iocard_pci {
	void __iomem *base;
	void __iomem *ivshmem;
	u32 wseq;
	bool intx;
};

static u32 iocard_pci_read(struct iocard *card, unsigned int reg)
{
	struct iocard_pci *pci = card->priv;
	void __iomem *base = pci->base;

	if (card->board->reg_width == 4)
		return ioread32(base + reg);
	return ioread8(base + reg);
}

static void iocard_pci_write(struct iocard *card, unsigned int reg, u32 val)
{
	struct iocard_pci *pci = card->priv;
	void __iomem *base = pci->base;

	if (card->board->reg_width == 4)
		iowrite32(val, base + reg);
	else
		iowrite8(val, base + reg);
}

/* Surprise removal: the registers read all-ones, config space too. */
static bool iocard_pci_gone(struct iocard *card)
{
	return !pci_device_is_present(to_pci_dev(card->dev));
}

static const struct iocard_ops iocard_pci_ops = {
	.read = iocard_pci_read,
	.write = iocard_pci_write,
	.gone = iocard_pci_gone,
};

/*
 * The test board: a write to OUT or EN bumps WSEQ and rings the host
 * model's doorbell, after which the host reads the words afresh.
 */
static void iocard_pci_testb_write(struct iocard *card, unsigned int reg,
				   u32 val)
{
	struct iocard_pci *pci = card->priv;

	iowrite32(val, pci->base + reg);
	if (reg != TESTB_OUT && reg != TESTB_EN)
		return;
	iowrite32(++pci->wseq, pci->base + TESTB_WSEQ);
	iowrite32(IVSHMEM_DOORBELL_HOST, pci->ivshmem + IVSHMEM_DOORBELL);
}

/* Gone from the bus, or the host model took the board away (ID word). */
static bool iocard_pci_testb_gone(struct iocard *card)
{
	struct iocard_pci *pci = card->priv;

	return iocard_pci_gone(card) ||
	       ioread32(pci->base + TESTB_ID) != TESTB_ID_VALUE;
}

static const struct iocard_ops iocard_pci_testb_ops = {
	.read = iocard_pci_read,
	.write = iocard_pci_testb_write,
	.gone = iocard_pci_testb_gone,
};

static irqreturn_t iocard_pci_irq(int irq, void *data)
{
	return iocard_cos_irq(data);
}

/*
 * The test board on INTx, a shared line: IntrStatus (read clears it) says
 * whether the interrupt is the board's.
 */
static irqreturn_t iocard_pci_testb_intx(int irq, void *data)
{
	struct iocard *card = data;
	struct iocard_pci *pci = card->priv;
	u32 isr = ioread32(pci->ivshmem + IVSHMEM_INTR_STATUS);

	if (!isr) {
		atomic_long_inc(&card->spurious);
		return IRQ_NONE;
	}
	if (isr == U32_MAX && iocard_pci_gone(card))
		return IRQ_NONE;
	return iocard_cos_irq(card);
}

static void iocard_pci_testb_intx_off(void *data)
{
	struct iocard_pci *pci = data;

	iowrite32(0, pci->ivshmem + IVSHMEM_INTR_MASK);
}

/*
 * The test board's interrupt: MSI-X if the device offers it (its own
 * vector), else INTx (shared, enabled in IntrMask once the handler is
 * there, disabled again before it goes). The vectors are freed by pcim.
 */
static int iocard_pci_testb_irq(struct pci_dev *pdev, struct iocard *card)
{
	struct iocard_pci *pci = card->priv;
	struct device *dev = &pdev->dev;
	bool msix;
	int irq, ret;

	pci_set_master(pdev);	/* MSI-X messages are bus master writes */
	ret = pci_alloc_irq_vectors(pdev, 1, 1,
				    PCI_IRQ_MSIX | IOCARD_PCI_IRQ_INTX);
	if (ret < 0)
		return dev_err_probe(dev, ret, "no MSI-X vector, no INTx\n");
	msix = pdev->msix_enabled;
	irq = pci_irq_vector(pdev, 0);
	if (irq < 0)
		return dev_err_probe(dev, irq, "no irq for vector 0\n");
	ret = devm_request_irq(dev, irq,
			       msix ? iocard_pci_irq : iocard_pci_testb_intx,
			       msix ? 0 : IRQF_SHARED, card->name, card);
	if (ret)
		return dev_err_probe(dev, ret, "cannot request irq %d\n", irq);
	if (!msix) {
		pci->intx = true;
		iowrite32(1, pci->ivshmem + IVSHMEM_INTR_MASK);
		ret = devm_add_action_or_reset(dev, iocard_pci_testb_intx_off,
					       pci);
		if (ret)
			return ret;
	}
	dev_info(dev, "%s: interrupt %s, irq %d\n", card->name,
		 msix ? "MSI-X" : "INTx (shared)", irq);
	return 0;
}

/* A board other than the test board: its one legacy line, shared. */
static int iocard_pci_request_irq(struct pci_dev *pdev, struct iocard *card)
{
	struct device *dev = &pdev->dev;
	int ret;

	if (card->board->ivshmem)
		return iocard_pci_testb_irq(pdev, card);
	if (!pdev->irq)
		return dev_err_probe(dev, -ENODEV, "no interrupt\n");
	ret = devm_request_irq(dev, pdev->irq, iocard_pci_irq, IRQF_SHARED,
			       card->name, card);
	if (ret)
		return dev_err_probe(dev, ret, "cannot request irq %d\n",
				     pdev->irq);
	return 0;
}

/*
 * The test board's BAR0 (ivshmem registers) and its ID word in BAR2. A
 * device without the ID is someone else's shared memory: refused before
 * anything is written to it.
 */
static int iocard_pci_testb_init(struct pci_dev *pdev, struct iocard_pci *pci)
{
	struct device *dev = &pdev->dev;
	u32 id;

	pci->ivshmem = iocard_pcim_iomap_bar(pdev, 0, KBUILD_MODNAME);
	if (IS_ERR(pci->ivshmem))
		return dev_err_probe(dev, PTR_ERR(pci->ivshmem),
				     "cannot map BAR0\n");
	id = ioread32(pci->base + TESTB_ID);
	if (id != TESTB_ID_VALUE)
		return dev_err_probe(dev, -ENODEV,
				     "BAR2 ID word is %#010x, not the libio test board's %#010x: not a test board\n",
				     id, TESTB_ID_VALUE);
	pci->wseq = ioread32(pci->base + TESTB_WSEQ);
	return 0;
}

/* Refuse a BAR shorter than the registers the board is driven through. */
static int iocard_pci_check_bar(struct pci_dev *pdev, unsigned int bar,
				resource_size_t need)
{
	resource_size_t len = pci_resource_len(pdev, bar);

	if (len < need)
		return dev_err_probe(&pdev->dev, -ENODEV,
				     "BAR%u is %llu bytes long, the board needs %llu\n",
				     bar, (unsigned long long)len,
				     (unsigned long long)need);
	return 0;
}

/* Open the MITE's window onto the register BAR (BAR1). */
static int iocard_pci_mite_init(struct pci_dev *pdev)
{
	void __iomem *mite;

	mite = pci_ioremap_bar(pdev, 0);
	if (!mite)
		return -ENOMEM;
	writel(lower_32_bits(pci_bus_address(pdev, 1)) | MITE_IODWBSR_WENAB,
	       mite + MITE_IODWBSR);
	iounmap(mite);
	return 0;
}

static int iocard_pci_probe(struct pci_dev *pdev,
			    const struct pci_device_id *unused)
{
	const struct pci_device_id *id = pci_match_id(iocard_pci_ids, pdev);
	struct device *dev = &pdev->dev;
	const struct iocard_board *board;
	const struct iocard_ops *ops;
	char location[48];
	struct iocard_pci *pci;
	struct iocard *card;
	int ret;

	/*
	 * driver_override binds any device: only take boards we know. The
	 * test board's ID is in no table the driver matches by (claim=1
	 * neither), so it comes only through driver_override.
	 */
	if (!id)
		id = pci_match_id(iocard_pci_test_ids, pdev);
	if (!id)
		return dev_err_probe(dev, -ENODEV,
				     "%04x:%04x is not in iocard's board table\n",
				     pdev->vendor, pdev->device);
	board = &iocard_boards[id->driver_data];

	ret = iocard_pci_check_bar(pdev, board->bar,
				   board->model->reg_len(board));
	if (ret)
		return ret;
	if (board->mite) {
		ret = iocard_pci_check_bar(pdev, 0, MITE_IODWBSR + sizeof(u32));
		if (ret)
			return ret;
	}
	if (board->ivshmem) {
		ret = iocard_pci_check_bar(pdev, 0, IVSHMEM_REGS_LEN);
		if (ret)
			return ret;
	}

	ret = pcim_enable_device(pdev);
	if (ret)
		return dev_err_probe(dev, ret, "cannot enable device\n");
	if (board->mite) {
		ret = iocard_pci_mite_init(pdev);
		if (ret)
			return dev_err_probe(dev, ret, "cannot set up MITE\n");
	}
	pci = devm_kzalloc(dev, sizeof(*pci), GFP_KERNEL);
	if (!pci)
		return -ENOMEM;
	pci->base = iocard_pcim_iomap_bar(pdev, board->bar, KBUILD_MODNAME);
	if (IS_ERR(pci->base))
		return dev_err_probe(dev, PTR_ERR(pci->base),
				     "cannot map BAR%u\n", board->bar);
	ops = &iocard_pci_ops;
	if (board->ivshmem) {
		ret = iocard_pci_testb_init(pdev, pci);
		if (ret)
			return ret;
		ops = &iocard_pci_testb_ops;
	}

	card = iocard_alloc(dev, board, ops, pci, -1);
	if (IS_ERR(card))
		return PTR_ERR(card);
	pci_set_drvdata(pdev, card);
	snprintf(location, sizeof(location), "pci:%s", pci_name(pdev));
	ret = iocard_publish(card, location, NULL);
	if (ret)
		return ret;
	ret = iocard_add_gpiochip(card);
	if (ret)
		return ret;
	if (card->cos_hw) {
		ret = iocard_pci_request_irq(pdev, card);
		if (ret)
			return ret;
	}
	return iocard_start(card);
}

/*
 * The board lost its registers (power off in suspend, a function reset):
 * the PCI core restored config space, MSI-X included; the MITE window, the
 * test board's IntrMask and the board's own registers are iocard's.
 */
static void iocard_pci_restore(struct pci_dev *pdev)
{
	struct iocard *card = pci_get_drvdata(pdev);
	struct iocard_pci *pci;

	if (!card)
		return;
	pci = card->priv;
	if (card->board->mite && iocard_pci_mite_init(pdev))
		dev_warn(&pdev->dev, "%s: cannot set up MITE again\n",
			 card->name);
	if (pci->intx)
		iowrite32(1, pci->ivshmem + IVSHMEM_INTR_MASK);
	iocard_restore(card);
}

static int iocard_pci_resume(struct device *dev)
{
	iocard_pci_restore(to_pci_dev(dev));
	return 0;
}

static DEFINE_SIMPLE_DEV_PM_OPS(iocard_pci_pm, NULL, iocard_pci_resume);

static const struct pci_error_handlers iocard_pci_err = {
	.reset_done = iocard_pci_restore,
};

/* Reboot or kexec: COS off, outputs to the safe state. */
static void iocard_pci_shutdown(struct pci_dev *pdev)
{
	struct iocard *card = pci_get_drvdata(pdev);
	struct iocard_pci *pci;

	if (!card)
		return;
	pci = card->priv;
	iocard_shutdown(card);
	if (pci->intx)
		iowrite32(0, pci->ivshmem + IVSHMEM_INTR_MASK);
}

static struct pci_driver iocard_pci_driver = {
	.name = KBUILD_MODNAME,
	.probe = iocard_pci_probe,
	.shutdown = iocard_pci_shutdown,
	.err_handler = &iocard_pci_err,
	.driver.pm = pm_sleep_ptr(&iocard_pci_pm),
};

int iocard_pci_init(void)
{
	if (iocard_pci_claim)
		iocard_pci_driver.id_table = iocard_pci_ids;
	return pci_register_driver(&iocard_pci_driver);
}

void iocard_pci_exit(void)
{
	pci_unregister_driver(&iocard_pci_driver);
}
