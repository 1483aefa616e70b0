import './style.css';
import { keyStore, portalTokenStore, query, RequestFailed } from './api.js';
import { h, labelled, replace } from './dom.js';
import { ViewerDocument } from './generated.js';
import { showFailure, type ConsoleContext, type Section, type Viewer } from './section.js';
import { planSection } from './sections/plan.js';
import { currentUsageSection } from './sections/current.js';
import { historySection } from './sections/history.js';
import { downloadSection } from './sections/download.js';
import { explorerSection } from './sections/explorer.js';
import { apiKeysSection } from './sections/keys.js';
import { alertsSection } from './sections/alerts.js';

interface Settings {
  /** The demo key, in development only. */
  defaultKey: string | null;
  /** A portal session's page (`/portal/<id>`): its token is in the fragment; no key form. */
  portal?: boolean;
}

const SECTIONS: Section[] = [planSection, currentUsageSection, historySection, downloadSection, explorerSection, apiKeysSection, alertsSection];

function readSettings(): Settings {
  try {
    return { defaultKey: null, ...JSON.parse(document.getElementById('console-settings')?.textContent ?? '{}') };
  } catch {
    return { defaultKey: null };
  }
}

const settings = readSettings();
const root = document.getElementById('app')!;
const portalMode = settings.portal === true;
const PORTAL_INVALID = 'This portal session is not valid (a wrong or incomplete link, or it expired or was revoked): ask the site that opened it for a new one.';

/** A portal session that cannot be used (any more): said plainly, with no key form to fall back to. */
function portalEnded(message: string): void {
  portalTokenStore.clear();
  replace(root, h('main', { id: 'main', class: 'portal-ended' }, h('h1', null, 'Usage portal'), h('p', { class: 'notice error', role: 'alert' }, message)));
}

function keyForm(message: string | null): void {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'ugw_…' });
  input.value = settings.defaultKey ?? '';
  const form = h(
    'form',
    { class: 'key-form', 'aria-labelledby': 'key-title' },
    h('h1', { id: 'key-title' }, 'Usage console'),
    h('p', null, 'Paste an API key with the usage:read scope. It is kept in this tab only (session storage) and sent in the Authorization header, never in a URL.'),
    settings.defaultKey ? h('p', { class: 'notice info' }, 'Development: the demo key is filled in.') : null,
    message ? h('p', { class: 'notice error', role: 'alert' }, message) : null,
    labelled('API key', input),
    h('button', { type: 'submit' }, 'Open the console'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    keyStore.set(key);
    void start(key);
  });
  replace(root, h('main', { id: 'main' }, form));
  input.focus();
}

function shell(context: ConsoleContext, viewer: Viewer): void {
  const realm = context.realm;
  const portal = viewer.portalSession;
  // A portal session shows the sections it was given, no more.
  const sections = portal ? SECTIONS.filter((section) => portal.sections.includes(section.id)) : SECTIONS;
  const nav = h('nav', { 'aria-label': 'Sections' }, h('ul', null, sections.map((section) => h('li', null, h('a', { href: `#${section.id}` }, section.title)))));
  const change = portal ? null : h('button', { type: 'button', class: 'secondary' }, 'Change key');
  change?.addEventListener('click', () => {
    keyStore.clear();
    keyForm(null);
  });
  const header = h(
    'header',
    { class: 'top' },
    portal
      ? h('div', null, h('h1', null, realm.name), h('p', { class: 'muted', 'data-portal-expires': portal.expiresAt }, viewer.workspace ? `Workspace ${viewer.workspace.name}` : '', ` · ${realm.timeZone} · this view ends at ${new Date(portal.expiresAt).toLocaleString()}`))
      : h('div', null, h('h1', null, realm.name), h('p', { class: 'muted' }, viewer.apiKey ? `${viewer.apiKey.name} (${viewer.apiKey.prefix}…)` : '', viewer.workspace ? ` · workspace ${viewer.workspace.name}` : ' · realm-wide', ` · ${realm.tier} · ${realm.timeZone}`)),
    change,
  );
  const main = h('main', { id: 'main', tabindex: -1 });
  const bodies = new Map<Section, HTMLElement>();
  for (const section of sections) {
    const body = h('div', { class: 'section-body' });
    bodies.set(section, body);
    main.append(h('section', { id: section.id, 'aria-labelledby': `${section.id}-title` }, h('h2', { id: `${section.id}-title` }, section.title), body));
  }
  replace(root, header, nav, main);
  // The slowest question (twelve months of billing) is asked last: a gateway that answers one at a
  // time (the embedded database) shows the other sections first.
  for (const section of [...sections].sort((a, b) => Number(a.slow ?? false) - Number(b.slow ?? false))) void section.render(context, bodies.get(section)!);
}

async function start(key: string): Promise<void> {
  replace(root, h('p', { class: 'loading', role: 'status' }, 'Connecting…'));
  const context: ConsoleContext = {
    key,
    viewer: null as unknown as Viewer,
    realm: null as unknown as ConsoleContext['realm'],
    onUnauthenticated(message) {
      if (portalMode) {
        portalEnded(message.includes('portal session') ? message : PORTAL_INVALID);
        return;
      }
      keyStore.clear();
      keyForm(message);
    },
  };
  try {
    context.viewer = (await query(key, ViewerDocument)).viewer;
  } catch (error) {
    if (!(error instanceof RequestFailed)) throw error;
    const body = h('main', { id: 'main' }, h('h1', null, 'Usage console'));
    const slot = h('div');
    body.append(slot);
    replace(root, body);
    showFailure(slot, error.failure, () => void start(key), context);
    return;
  }
  if (!context.viewer.realm) {
    keyStore.clear();
    keyForm('This is an operator key: it belongs to no realm and has no usage to show. Paste a realm key.');
    return;
  }
  context.realm = context.viewer.realm;
  shell(context, context.viewer);
  const portal = context.viewer.portalSession;
  if (portal) {
    // Said when it happens, not only at the next request. (setTimeout holds at most ~24.8 days; a session lives 24 h.)
    const left = new Date(portal.expiresAt).getTime() - Date.now();
    setTimeout(() => portalEnded(`This portal session expired at ${new Date(portal.expiresAt).toLocaleString()}: ask the site that opened it for a new one.`), Math.max(0, left));
  }
}

if (portalMode) {
  const token = portalTokenStore.takeFromFragment();
  if (token) void start(token);
  else portalEnded(PORTAL_INVALID);
} else {
  const initialKey = keyStore.get() ?? settings.defaultKey;
  if (initialKey) void start(initialKey);
  else keyForm(null);
}
