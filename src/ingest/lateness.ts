/** How late an event may arrive and still count: beyond every feature's normal arrival delay. */
export const DEFAULT_LATENESS_WINDOW_MS = 35 * 86_400_000;
