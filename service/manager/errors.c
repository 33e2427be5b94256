/* SPDX-License-Identifier: MIT */
#include "errors.h"

/* The bus front registers D-Bus names for this quark by its string. */
G_DEFINE_QUARK(shimmer - service - error - quark, shimmer_service_error)
