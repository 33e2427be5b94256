/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

/*
 * Big-endian (network order) integers in byte buffers: the one copy every
 * wire format in src/ uses. The caller checks the bounds; these only move
 * bytes, so they suit unaligned positions.
 */

static inline guint16 shimmer_read_be16(const guint8 *p)
{
    return (guint16)(((guint)p[0] << 8) | p[1]);
}

static inline guint32 shimmer_read_be24(const guint8 *p)
{
    return ((guint32)p[0] << 16) | ((guint32)p[1] << 8) | p[2];
}

static inline guint32 shimmer_read_be32(const guint8 *p)
{
    return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static inline void shimmer_write_be16(guint8 *p, guint16 v)
{
    p[0] = (guint8)(v >> 8);
    p[1] = (guint8)v;
}

static inline void shimmer_write_be24(guint8 *p, guint32 v)
{
    p[0] = (guint8)(v >> 16);
    p[1] = (guint8)(v >> 8);
    p[2] = (guint8)v;
}

static inline void shimmer_write_be32(guint8 *p, guint32 v)
{
    p[0] = (guint8)(v >> 24);
    p[1] = (guint8)(v >> 16);
    p[2] = (guint8)(v >> 8);
    p[3] = (guint8)v;
}
