/**
 * The transport and storage choices, shared by the first-run screen and Settings: radio
 * cards that say what each option means.
 *
 * @module
 */
import { h, icon, type IconName } from '../dom.js';
import type { RelayTransportKind, StorageKind, TransportKind } from '../settings.js';

interface Choice<T extends string> {
  readonly value: T;
  readonly title: string;
  readonly icon: IconName;
  readonly text: string;
}

export const TRANSPORT_CHOICES: readonly Choice<TransportKind>[] = [
  { value: 'websocket', title: 'WebSocket', icon: 'zap', text: 'One persistent connection to the relay. The default.' },
  { value: 'http-polling', title: 'HTTP long-polling', icon: 'refresh', text: 'Plain HTTP requests, for networks and proxies that block WebSockets.' },
  { value: 'webrtc', title: 'WebRTC', icon: 'link', text: 'Direct device-to-device data channels while both are online; the relay still carries the signalling (encrypted) and offline messages.' },
];

export const STORAGE_CHOICES: readonly Choice<StorageKind>[] = [
  { value: 'indexeddb', title: 'IndexedDB', icon: 'lock', text: 'Kept in this browser: keys and history survive reloads and restarts.' },
  { value: 'memory', title: 'Memory', icon: 'alert', text: 'Nothing is written to disk: closing or reloading the tab loses this device’s keys and history for good.' },
];

/** A group of radio cards; `read()` returns the checked value. */
export function radioCards<T extends string>(name: string, choices: readonly Choice<T>[], checked: T, onChange?: (value: T) => void): { readonly el: HTMLElement; read(): T } {
  const inputs = choices.map((c) => h('input', { type: 'radio', name, value: c.value, checked: c.value === checked, 'data-testid': `${name}-${c.value}` }));
  const el = h(
    'div',
    { class: 'radio-cards', role: 'radiogroup' },
    ...choices.map((c, i) =>
      h('label', { class: 'radio-card' }, inputs[i]!, h('span', { class: 'radio-card-icon' }, icon(c.icon, 18)), h('span', { class: 'radio-card-body' }, h('strong', null, c.title), h('span', null, c.text))),
    ),
  );
  if (onChange) for (const input of inputs) input.addEventListener('change', () => onChange(input.value as T));
  return { el, read: () => (inputs.find((i) => i.checked)?.value ?? checked) as T };
}

export function fallbackSelect(value: RelayTransportKind): HTMLSelectElement {
  return h(
    'select',
    { 'data-testid': 'webrtc-fallback' },
    h('option', { value: 'websocket', selected: value === 'websocket' }, 'WebSocket'),
    h('option', { value: 'http-polling', selected: value === 'http-polling' }, 'HTTP long-polling'),
  );
}
