/**
 * A few DOM helpers instead of a UI framework: `h()` builds elements, `icon()` draws the
 * app's line icons, and some formatting for names, avatars and times.
 *
 * Text always goes in as text nodes (never HTML), so message bodies and names cannot
 * inject markup.
 *
 * @module
 */

export type Child = Node | string | number | false | null | undefined | readonly Child[];
/** Attributes (strings), properties that are not attributes (`value`, `checked`...) and `on<event>` listeners. */
export type Props = Record<string, unknown>;

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate']);

export function append(parent: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c as readonly Child[]);
    else parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * `h('button', { class: 'primary', onclick: () => save(), 'data-testid': 'save' }, 'Save')`.
 * `on*` function props become listeners; `value`, `checked`, `disabled`, `selected` are set
 * as properties; `true` is an empty attribute; `false`, `null` and `undefined` are left out.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value as EventListener);
    else if (PROPERTIES.has(name)) (el as unknown as Record<string, unknown>)[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

const SVG = 'http://www.w3.org/2000/svg';

/** 24x24 line icons: path data, circles as `c:cx,cy,r`, rounded rects as `r:x,y,w,h,rx`. */
const ICONS = {
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  'check-double': ['M2.5 12.5l4.5 4.5L16.5 7.5', 'M12 16.5l.5.5L22 7.5'],
  clock: ['c:12,12,8.5', 'M12 7.5V12l3 2'],
  alert: ['c:12,12,8.5', 'M12 7.5v5.5', 'M12 16.4v.1'],
  x: ['M6 6l12 12', 'M18 6L6 18'],
  plus: ['M12 5v14', 'M5 12h14'],
  send: ['M4 11.5L20 4l-7.5 16-2-6.5z', 'M10.5 13.5L20 4'],
  lock: ['r:5,10.5,14,10,2.5', 'M8.5 10.5V8a3.5 3.5 0 0 1 7 0v2.5'],
  shield: ['M12 3l7.5 3v5.5c0 4.8-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.7-7.5-9.5V6z'],
  'shield-check': ['M12 3l7.5 3v5.5c0 4.8-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.7-7.5-9.5V6z', 'M8.8 12.2l2.2 2.2 4.3-4.4'],
  'shield-alert': ['M12 3l7.5 3v5.5c0 4.8-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.7-7.5-9.5V6z', 'M12 8v4.5', 'M12 15.4v.1'],
  settings: ['M4 7h9', 'M17 7h3', 'c:15,7,2', 'M4 17h3', 'M11 17h9', 'c:9,17,2', 'M4 12h13', 'M21 12h-1', 'c:18.5,12,1.5'],
  devices: ['r:3,5,13,10,1.5', 'M1.5 18.5h16', 'r:17.5,9,5,11,1.2'],
  users: ['c:9,8.5,3.5', 'M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6', 'c:17,9.5,2.5', 'M16.5 14.2c2.9.2 5 2.3 5 5.3'],
  edit: ['M4 20h4L19.5 8.5l-4-4L4 16z', 'M13.5 6.5l4 4'],
  qr: ['r:4,4,6,6,1', 'r:14,4,6,6,1', 'r:4,14,6,6,1', 'M14 14h2.5v2.5H14z', 'M18 18h2v2h-2z', 'M18 14h2', 'M14 19h2'],
  info: ['c:12,12,8.5', 'M12 11v5.5', 'M12 7.6v.1'],
  trash: ['M4 7h16', 'M9.5 7V4.5h5V7', 'M6 7l1 13h10l1-13'],
  copy: ['r:8,8,12,12,2', 'M16 8V5.5A1.5 1.5 0 0 0 14.5 4h-9A1.5 1.5 0 0 0 4 5.5v9A1.5 1.5 0 0 0 5.5 16H8'],
  zap: ['M13 2.5L4.5 13.5H11l-1 8 8.5-11H12z'],
  cloud: ['M7 18.5a4.5 4.5 0 0 1-.6-9A6 6 0 0 1 18 10a4.3 4.3 0 0 1-.5 8.5z'],
  search: ['c:11,11,6.5', 'M20 20l-4.3-4.3'],
  logout: ['M14.5 4H19v16h-4.5', 'M10 8l-4 4 4 4', 'M6 12h10'],
  back: ['M15 5.5L8.5 12l6.5 6.5'],
  refresh: ['M19.5 12a7.5 7.5 0 1 1-2.2-5.3L19.5 9', 'M19.5 4v5h-5'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
  message: ['M4 5.5h16v11H9l-5 4z'],
} as const satisfies Record<string, readonly string[]>;

export type IconName = keyof typeof ICONS;

export function icon(name: IconName, size = 20): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  for (const d of ICONS[name]) {
    let el: SVGElement;
    if (d.startsWith('c:')) {
      const [cx, cy, r] = d.slice(2).split(',');
      el = document.createElementNS(SVG, 'circle');
      el.setAttribute('cx', cx!);
      el.setAttribute('cy', cy!);
      el.setAttribute('r', r!);
    } else if (d.startsWith('r:')) {
      const [x, y, w, hh, rx] = d.slice(2).split(',');
      el = document.createElementNS(SVG, 'rect');
      el.setAttribute('x', x!);
      el.setAttribute('y', y!);
      el.setAttribute('width', w!);
      el.setAttribute('height', hh!);
      el.setAttribute('rx', rx!);
    } else {
      el = document.createElementNS(SVG, 'path');
      el.setAttribute('d', d);
    }
    svg.appendChild(el);
  }
  return svg;
}

/** A round avatar with initials, its colour derived from the id (the same on every screen). */
export function avatar(id: string, options: { readonly group?: boolean; readonly size?: 'sm' | 'md' | 'lg' } = {}): HTMLElement {
  const hue = idHue(id);
  const letters = options.group ? null : initials(id);
  return h(
    'span',
    { class: `avatar avatar-${options.size ?? 'md'}`, style: `--avatar-hue: ${hue}`, 'aria-hidden': 'true' },
    letters ?? icon('users', options.size === 'lg' ? 28 : 18),
  );
}

/** A hue (0-359) derived from an id: the same colour for a user on every screen. */
export function idHue(id: string): number {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return hash % 360;
}

function initials(name: string): string {
  // "alice" -> A, "alice.smith" -> AS.
  const parts = name.split(/[\s._@:+-]+/).filter((p) => p.length > 0);
  const first = parts[0]?.[0] ?? name[0] ?? '?';
  const second = parts.length > 1 ? (parts[1]?.[0] ?? '') : '';
  return (first + second).toUpperCase();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const shortDayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

const startOfDay = (ms: number): number => {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
};

/** `14:05`. */
export const clockTime = (ms: number): string => timeFormat.format(ms);

/** `Today`, `Yesterday` or `Tuesday, March 4`: the separator between days of messages. */
export function dayLabel(ms: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  return days === 0 ? 'Today' : days === 1 ? 'Yesterday' : dayFormat.format(ms);
}

/** The time shown in the conversation list: `14:05` today, else `Mar 4`. */
export function listTime(ms: number, now = Date.now()): string {
  return startOfDay(ms) === startOfDay(now) ? clockTime(ms) : shortDayFormat.format(ms);
}

export const sameDay = (a: number, b: number): boolean => startOfDay(a) === startOfDay(b);
