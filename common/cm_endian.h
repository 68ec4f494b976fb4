/*-------------------------------------------------------------------------
 *
 * cm_endian.h
 *	  Big-endian (network byte order) reads and writes of unaligned
 *	  integers, the one set every part of Connection Manager uses for the
 *	  wire formats.
 *
 * Plain C99, header only: the functions are static inline so that the
 * protocol codec, the authentication code and the tests get them without
 * another object file.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_endian.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_ENDIAN_H
#define CM_ENDIAN_H

#include <stdint.h>

static inline uint16_t
cm_get_u16(const uint8_t *p)
{
	return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}

static inline uint32_t
cm_get_u32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

static inline uint64_t
cm_get_u64(const uint8_t *p)
{
	return ((uint64_t) cm_get_u32(p) << 32) | cm_get_u32(p + 4);
}

static inline void
cm_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static inline void
cm_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline void
cm_put_u64(uint8_t *p, uint64_t v)
{
	cm_put_u32(p, (uint32_t) (v >> 32));
	cm_put_u32(p + 4, (uint32_t) v);
}

#endif							/* CM_ENDIAN_H */
