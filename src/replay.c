/* SPDX-License-Identifier: MIT */
/* placeholder */
#include <glib.h>
