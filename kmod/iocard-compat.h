/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iocard: kernel version compatibility.
 *
 * Every LINUX_VERSION_CODE test of the module lives in this file and only
 * here. The other files use the helpers below and never test the version.
 * Tested kernels: Debian 12's 6.1, bookworm-backports' 6.12 (also with
 * PREEMPT_RT).
 */
#ifndef IOCARD_COMPAT_H
#define IOCARD_COMPAT_H

#include <linux/version.h>
#include <linux/device.h>
#include <linux/gpio/driver.h>
#include <linux/hrtimer.h>
#include <linux/pci.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "iocard needs Linux 6.1 or later (immutable irq_chip, gpiolib irqchip)"
#endif

/*
 * Class attribute callbacks take const pointers since 6.4.
 * IOCARD_CLASS_CONST goes in front of "struct class" and
 * "struct class_attribute" in their prototypes.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define IOCARD_CLASS_CONST const
#else
#define IOCARD_CLASS_CONST
#endif

/*
 * hrtimer_setup() replaced hrtimer_init() plus an assignment of ->function
 * in 6.13; hrtimer_init() is gone since 6.15.
 */
static inline void iocard_hrtimer_setup(struct hrtimer *timer,
					enum hrtimer_restart (*fn)(struct hrtimer *),
					clockid_t clock, enum hrtimer_mode mode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
	hrtimer_setup(timer, fn, clock, mode);
#else
	hrtimer_init(timer, clock, mode);
	timer->function = fn;
#endif
}

/*
 * Map one BAR, managed. pcim_iomap_region() exists since 6.11 and the
 * pcim_iomap_table() interface is deprecated since then; older kernels only
 * have the table.
 */
static inline void __iomem *iocard_pcim_iomap_bar(struct pci_dev *pdev,
						  int bar, const char *name)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	return pcim_iomap_region(pdev, bar, name);
#else
	int ret = pcim_iomap_regions(pdev, BIT(bar), name);

	if (ret)
		return IOMEM_ERR_PTR(ret);
	return pcim_iomap_table(pdev)[bar];
#endif
}

/*
 * pci_alloc_irq_vectors()'s flag for INTx: PCI_IRQ_INTX since 6.8, before
 * that PCI_IRQ_LEGACY (gone since 6.10). A test of the macro itself, which
 * is exact where a version number could be off by a release.
 */
#ifdef PCI_IRQ_INTX
#define IOCARD_PCI_IRQ_INTX	PCI_IRQ_INTX
#else
#define IOCARD_PCI_IRQ_INTX	PCI_IRQ_LEGACY
#endif

/*
 * Can gpiolib remove a chip while user space holds its lines? 6.12's
 * gpiochip_remove() wakes the waiting processes (their reads fail with
 * ENODEV) and lines released later drop their references as usual. 6.1's
 * wakes no one and keeps for good the module and gpio_device references of
 * the lines requested at that moment (gpiod_free() finds no chip), so the
 * gpio_device, which points at the line names, is never freed. Where
 * gpiolib cannot, iocard does it (iocard_chip_removed()). On every kernel
 * the irq domain is the card's and the line interrupts still requested are
 * handed over to iocard before the removal (iocard_quiesce()): 6.1's
 * gpiolib would dispose of its domain under them, 6.12's frees them in a
 * way that races with a line request being set up.
 * Kernels between the two are untested and treated like 6.1.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define IOCARD_GPIOLIB_REMOVES_IN_USE	true
#else
#define IOCARD_GPIOLIB_REMOVES_IN_USE	false
#endif

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
static inline int iocard_compat_match_gpio_bus(struct device *dev, void *data)
{
	return dev->bus && !strcmp(dev->bus->name, "gpio");
}
#endif

/**
 * iocard_gpio_device_get() - the struct device of a chip's gpio_device
 * @gc: a registered gpio_chip whose parent has no other gpio chip
 *
 * Return: the device with a reference held (put_device() it), or NULL.
 */
static inline struct device *iocard_gpio_device_get(struct gpio_chip *gc)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return get_device(gpio_device_to_device(gc->gpiodev));
#else
	return device_find_child(gc->parent, NULL,
				 iocard_compat_match_gpio_bus);
#endif
}

/**
 * iocard_gpiochip_name() - copy the device name ("gpiochipN") of a chip
 * @gc: a registered gpio_chip whose parent has no other gpio chip
 * @buf: destination
 * @len: size of @buf
 *
 * 6.8 and later export gpio_device_to_device(). Older kernels keep struct
 * gpio_device private; there the chip device is found as the child of the
 * parent on the "gpio" bus.
 */
static inline void iocard_gpiochip_name(struct gpio_chip *gc, char *buf,
					size_t len)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	strscpy(buf, dev_name(gpio_device_to_device(gc->gpiodev)), len);
#else
	struct device *dev;

	dev = device_find_child(gc->parent, NULL, iocard_compat_match_gpio_bus);
	if (dev) {
		strscpy(buf, dev_name(dev), len);
		put_device(dev);
	} else {
		strscpy(buf, "", len);
	}
#endif
}

#endif /* IOCARD_COMPAT_H */
