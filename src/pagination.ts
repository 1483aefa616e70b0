/** Relay connections: `first`/`last` are at most MAX_PAGE_SIZE (more is an error) and default to DEFAULT_PAGE_SIZE. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;
