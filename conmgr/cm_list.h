/*-------------------------------------------------------------------------
 *
 * cm_list.h
 *	  A small intrusive doubly linked list for conmgr's objects.
 *
 * An object that lives on a list embeds a CmListNode per list it can be
 * on; the list itself is a CmList.  Both are valid when zeroed (calloc,
 * memset): a zeroed list is empty and a zeroed node is on no list, so no
 * initialisation call is needed.  Insertion and removal are O(1) and
 * never allocate.  cm_list_foreach() may remove (or move to another list)
 * the node it is at, but no other node of the list.
 *
 *		CmListIter	it;
 *
 *		cm_list_foreach(it, &inst->apps)
 *		{
 *			CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);
 *			...
 *		}
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_list.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONMGR_CM_LIST_H
#define CONMGR_CM_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct CmListNode
{
	struct CmListNode *prev;
	struct CmListNode *next;
	bool		linked;			/* on a list now */
} CmListNode;

typedef struct CmList
{
	CmListNode *first;			/* NULL when empty */
} CmList;

/* Position of cm_list_foreach(): the current node, and the one after it. */
typedef struct CmListIter
{
	CmListNode *cur;
	CmListNode *next;
} CmListIter;

/* The object that embeds node as its member named member. */
#define cm_list_container(type, member, node) \
	((type *) ((char *) (node) - offsetof(type, member)))

/* Walk list from its first node; the body may unlink it.cur only. */
#define cm_list_foreach(it, list) \
	for ((it).cur = (list)->first; \
		 (it).cur != NULL && ((it).next = (it).cur->next, true); \
		 (it).cur = (it).next)

static inline bool
cm_list_is_empty(const CmList *list)
{
	return list->first == NULL;
}

/* The first node, or NULL when the list is empty. */
static inline CmListNode *
cm_list_first(const CmList *list)
{
	return list->first;
}

/* Is node on a list? */
static inline bool
cm_list_linked(const CmListNode *node)
{
	return node->linked;
}

/* Put node, on no list, at the head of list. */
static inline void
cm_list_push_head(CmList *list, CmListNode *node)
{
	node->prev = NULL;
	node->next = list->first;
	if (list->first)
		list->first->prev = node;
	list->first = node;
	node->linked = true;
}

/* Take node off list, which must be the list it is on. */
static inline void
cm_list_delete(CmList *list, CmListNode *node)
{
	if (node->prev)
		node->prev->next = node->next;
	else
		list->first = node->next;
	if (node->next)
		node->next->prev = node->prev;
	node->prev = node->next = NULL;
	node->linked = false;
}

#endif							/* CONMGR_CM_LIST_H */
