// SPDX-License-Identifier: GPL-2.0
/*
 * iocard: the module.
 *
 * Brings the parts together: checks the module parameters, registers the
 * class "iocard" (iocard-core.c) with its new_sim and delete_sim attributes,
 * then the PCI driver (iocard-pci.c) and the virtual cards (iocard-sim.c).
 * The core is a library of the two bus parts and calls into neither; this
 * file is the only one that knows them all.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "iocard.h"
#include "iocard-compat.h"

static ssize_t new_sim_store(IOCARD_CLASS_CONST struct class *class,
			     IOCARD_CLASS_CONST struct class_attribute *attr,
			     const char *buf, size_t count)
{
	int ret = iocard_sim_new(buf, count);

	return ret < 0 ? ret : count;
}
static CLASS_ATTR_WO(new_sim);

static ssize_t delete_sim_store(IOCARD_CLASS_CONST struct class *class,
				IOCARD_CLASS_CONST struct class_attribute *attr,
				const char *buf, size_t count)
{
	int ret = iocard_sim_delete(buf, count);

	return ret < 0 ? ret : count;
}
static CLASS_ATTR_WO(delete_sim);

static struct attribute *iocard_class_attrs[] = {
	&class_attr_new_sim.attr,
	&class_attr_delete_sim.attr,
	NULL
};
ATTRIBUTE_GROUPS(iocard_class);

static int __init iocard_init(void)
{
	int ret;

	ret = iocard_core_check_param();
	if (ret)
		return ret;
	ret = iocard_sim_check_param();
	if (ret)
		return ret;

	ret = iocard_core_init(iocard_class_groups);
	if (ret)
		return ret;
	ret = iocard_pci_init();
	if (ret)
		goto err_core;
	ret = iocard_sim_init();
	if (ret)
		goto err_pci;
	return 0;

err_pci:
	iocard_pci_exit();
err_core:
	iocard_core_exit();
	return ret;
}
module_init(iocard_init);

static void __exit iocard_exit(void)
{
	iocard_sim_exit();
	iocard_pci_exit();
	iocard_core_exit();
}
module_exit(iocard_exit);

MODULE_DESCRIPTION("Digital I/O cards (8255 PCI boards, virtual cards) as gpiochips with change-of-state events");
MODULE_AUTHOR("libio project");
MODULE_LICENSE("GPL");
MODULE_VERSION(IOCARD_VERSION);
