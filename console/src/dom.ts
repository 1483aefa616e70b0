/** A few DOM helpers: the console is small enough to need no framework. */

type Child = Node | string | number | null | undefined | false | Child[];
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let nextId = 0;
export const uniqueId = (prefix: string) => `${prefix}-${++nextId}`;

/** A table that scrolls sideways on narrow screens; the wrapper is focusable so keyboards can scroll it. */
export function table(caption: string, head: string[], rows: Node[], attributes: Attributes = {}): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', attributes, h('caption', null, caption), h('thead', null, h('tr', null, head.map((label) => h('th', { scope: 'col' }, label)))), h('tbody', null, rows)),
  );
}

export function labelled(label: string, control: HTMLElement): HTMLElement {
  const id = control.id || uniqueId('field');
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

export function select(options: { value: string; label: string }[], value: string, attributes: Attributes = {}): HTMLSelectElement {
  return h('select', attributes, options.map((option) => h('option', { value: option.value, selected: option.value === value }, option.label)));
}
