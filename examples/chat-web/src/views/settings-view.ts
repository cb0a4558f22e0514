/**
 * Settings: the relay and the transport (applied at once: the client restarts on the same
 * storage and the conversation carries on), the storage (which is the device itself, so
 * changing it starts over), and removing the account from this browser.
 *
 * @module
 */
import type { ChatApp } from '../app.js';
import { h, icon } from '../dom.js';
import { checkRelayUrl, normalizeRelayUrl, TRANSPORT_LABELS, type RelayTransportKind, type Settings, type StorageKind, type TransportKind } from '../settings.js';
import { fallbackSelect, radioCards, STORAGE_CHOICES, TRANSPORT_CHOICES } from './choices.js';
import { busy, closeModal, errorLine, field, openModal, toast } from './overlay.js';

export function openSettings(app: ChatApp, startOver: (storage: StorageKind) => void): void {
  const relay = h('input', { type: 'url', value: app.settings.relayUrl, spellcheck: 'false', 'data-testid': 'settings-relay' });
  const fallback = fallbackSelect(app.settings.webrtcFallback);
  const fallbackField = field('WebRTC falls back to', fallback, 'The relay transport for the key directory, signalling and offline delivery.');
  const transport = radioCards<TransportKind>('transport', TRANSPORT_CHOICES, app.settings.transport, (v) => (fallbackField.hidden = v !== 'webrtc'));
  fallbackField.hidden = app.settings.transport !== 'webrtc';
  const error = errorLine();
  const apply = h('button', { type: 'submit', class: 'button primary', 'data-testid': 'settings-apply' }, 'Apply');
  const connection = h(
    'form',
    { class: 'form settings-section' },
    h('h3', null, 'Connection'),
    field('Relay', relay, 'The relay stores and forwards ciphertext only; it never sees a key or a message.'),
    h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Transport'), transport.el),
    fallbackField,
    h('p', { class: 'muted small' }, 'Switching reconnects this device over the same storage: identity, sessions and history stay; messages sent meanwhile wait at the relay.'),
    error.el,
    h('div', { class: 'form-actions' }, apply),
  );
  connection.addEventListener('submit', (e) => {
    e.preventDefault();
    const problem = checkRelayUrl(relay.value.trim());
    if (problem) return error.show(problem);
    const next: Settings = { relayUrl: normalizeRelayUrl(relay.value.trim()), transport: transport.read(), webrtcFallback: fallback.value as RelayTransportKind };
    void busy(
      apply,
      'Switching…',
      async () => {
        await app.applySettings(next);
        if (app.state === 'failed') throw new Error(app.startError ?? 'Cannot reach the relay.');
        closeModal();
        toast(`Connected over ${next.transport === 'webrtc' ? `WebRTC (falling back to ${TRANSPORT_LABELS[next.webrtcFallback]})` : TRANSPORT_LABELS[next.transport]}.`);
      },
      error.show,
    );
  });

  const current = app.profile.storage;
  const storageNote = h('p', { class: 'muted small', 'data-testid': 'storage-note' });
  const startOverButton = h('button', { type: 'button', class: 'button danger', 'data-testid': 'storage-start-over', hidden: true });
  const storage = radioCards<StorageKind>('storage', STORAGE_CHOICES, current, (v) => showStorage(v));
  const showStorage = (chosen: StorageKind): void => {
    const same = chosen === current;
    storageNote.textContent = same
      ? current === 'memory'
        ? 'This device lives in memory only: reloading this tab loses its keys and history for good.'
        : 'This device’s keys, sessions and history are in this browser’s IndexedDB.'
      : `The storage is the device: switching to ${chosen === 'memory' ? 'memory' : 'IndexedDB'} removes this account from this browser (keys and history here are deleted) and sets up a new device. The relay keeps ${app.me} tied to its current key, so sign up under a new user id, or link the new device from one of your other devices.`;
    startOverButton.hidden = same;
    startOverButton.replaceChildren(icon('logout', 18), `Start over with ${chosen === 'memory' ? 'memory' : 'IndexedDB'} storage`);
  };
  showStorage(current);
  startOverButton.addEventListener('click', () => {
    const chosen = storage.read();
    if (!confirm(`Delete ${app.me}'s keys and history from this browser and start over with ${chosen} storage?`)) return;
    closeModal();
    startOver(chosen);
  });

  const remove = h('button', { type: 'button', class: 'button danger ghost', 'data-testid': 'remove-account' }, icon('trash', 18), 'Remove account from this browser');
  remove.addEventListener('click', () => {
    if (!confirm(`Delete ${app.me}'s keys and history from this browser? Your other devices keep theirs.`)) return;
    closeModal();
    startOver(current);
  });

  const body = h(
    'div',
    { class: 'settings' },
    connection,
    h('section', { class: 'form settings-section' }, h('h3', null, 'Storage'), storage.el, storageNote, h('div', { class: 'form-actions' }, startOverButton)),
    h(
      'section',
      { class: 'settings-section' },
      h('h3', null, 'Account'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'User id'),
        h('dd', { 'data-testid': 'settings-user' }, app.me),
        h('dt', null, 'This device'),
        h('dd', { 'data-testid': 'settings-device' }, app.profile.deviceId),
      ),
      h('div', { class: 'form-actions' }, remove),
    ),
  );
  openModal({ title: 'Settings', name: 'settings', body, wide: true });
}
