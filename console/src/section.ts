import { RequestFailed, type Failure } from './api.js';
import { h, replace } from './dom.js';
import type { ViewerQuery } from './generated.js';

export type Viewer = ViewerQuery['viewer'];
export type Realm = NonNullable<Viewer['realm']>;

/** The realm of an answer's viewer: keys of a realm always have one (operator keys, which have none, are refused at the start). */
export function realmOf<T>(viewer: { realm: T | null }): T {
  if (viewer.realm === null) throw new Error('This key belongs to no realm.');
  return viewer.realm;
}

export interface ConsoleContext {
  key: string;
  viewer: Viewer;
  realm: Realm;
  /** The key stopped working (expired, revoked): back to the key form, saying so. */
  onUnauthenticated(message: string): void;
}

export interface Section {
  id: string;
  title: string;
  /** Loaded after the others (its question takes the gateway longest). */
  slow?: boolean;
  render(context: ConsoleContext, body: HTMLElement): Promise<void>;
}

/** A failure, said plainly where the section's content would be; 429 and 503 retry by themselves. */
export function showFailure(body: HTMLElement, failure: Failure, retry: () => void, context: ConsoleContext): void {
  if (failure.kind === 'unauthenticated') {
    context.onUnauthenticated(failure.message);
    return;
  }
  if (failure.kind === 'rateLimited' || failure.kind === 'unavailable') {
    let left = failure.retryAfter;
    const seconds = h('span', { class: 'countdown' }, String(left));
    const what = failure.kind === 'rateLimited' ? 'Too many requests for this key (rate limited).' : 'The gateway is unavailable for a moment.';
    replace(body, h('div', { class: 'notice warning', role: 'status' }, `${what} Retrying in `, seconds, ' s.'));
    const timer = setInterval(() => {
      left -= 1;
      seconds.textContent = String(Math.max(0, left));
      if (left <= 0) {
        clearInterval(timer);
        retry();
      }
    }, 1000);
    return;
  }
  const prefix = { unreachable: 'Unreachable', forbidden: 'Not allowed', badInput: 'Not valid', error: 'Failed' }[failure.kind];
  replace(
    body,
    h(
      'div',
      { class: 'notice error', role: 'alert' },
      h('strong', null, `${prefix}: `),
      failure.message,
      failure.kind === 'error' && failure.requestId ? ` (request id ${failure.requestId})` : '',
      ' ',
      failure.kind === 'forbidden' || failure.kind === 'badInput' ? '' : h('button', { type: 'button', onclick: () => retry() }, 'Retry'),
    ),
  );
}

/** Runs a section's loader with a loading state, and shows any failure instead of its content. */
export async function load<T>(context: ConsoleContext, body: HTMLElement, fetcher: () => Promise<T>, show: (data: T) => void): Promise<void> {
  const run = async () => {
    body.setAttribute('aria-busy', 'true');
    if (!body.firstChild) replace(body, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const data = await fetcher();
      replace(body);
      show(data);
    } catch (error) {
      if (error instanceof RequestFailed) showFailure(body, error.failure, () => void run(), context);
      else {
        replace(body, h('div', { class: 'notice error', role: 'alert' }, `Failed: ${error instanceof Error ? error.message : String(error)}`));
        console.error(error);
      }
    } finally {
      body.removeAttribute('aria-busy');
    }
  };
  await run();
}

export const empty = (text: string) => h('p', { class: 'empty' }, text);
