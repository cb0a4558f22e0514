/**
 * The first-run screen: create an account (this browser becomes the user's first device),
 * or link this browser to an existing account as another device. Relay, transport and
 * storage can be chosen here too.
 *
 * @module
 */
import type { DeviceLink } from '@deadbolt/core';
import { isDeadboltError } from '@deadbolt/spec';
import { connect, deleteDeviceStorage, describeError, startLink, type Connection } from '../connect.js';
import { h, icon, replaceChildren } from '../dom.js';
import { qrCode } from '../qr.js';
import {
  checkRelayUrl,
  ID_PATTERN,
  loadSettings,
  newProfile,
  normalizeRelayUrl,
  saveProfile,
  saveSettings,
  suggestDeviceId,
  type Profile,
  type RelayTransportKind,
  type Settings,
  type StorageKind,
  type TransportKind,
} from '../settings.js';
import { fallbackSelect, radioCards, STORAGE_CHOICES, TRANSPORT_CHOICES } from './choices.js';
import { busy, errorLine, field } from './overlay.js';

export interface OnboardingOptions {
  /** Shown above the form (for example: a memory-only device was lost on reload). */
  readonly notice?: string;
  /** The storage to preselect. */
  readonly storage?: StorageKind;
  /** The device is ready and its client started. */
  done(profile: Profile, settings: Settings, connection: Connection): void;
}

export function showOnboarding(root: HTMLElement, options: OnboardingOptions): void {
  const saved = loadSettings();
  let mode: 'signup' | 'link' = 'signup';
  let link: DeviceLink | undefined;

  const user = h('input', { type: 'text', autocomplete: 'username', spellcheck: 'false', placeholder: 'alice', autofocus: true, 'data-testid': 'signup-user' });
  const device = h('input', { type: 'text', value: suggestDeviceId(), spellcheck: 'false', 'data-testid': 'signup-device' });
  const relay = h('input', { type: 'url', value: saved.relayUrl, spellcheck: 'false', 'data-testid': 'signup-relay' });
  const fallback = fallbackSelect(saved.webrtcFallback);
  const fallbackField = field('WebRTC falls back to', fallback);
  const transport = radioCards<TransportKind>('transport', TRANSPORT_CHOICES, saved.transport, (v) => (fallbackField.hidden = v !== 'webrtc'));
  fallbackField.hidden = saved.transport !== 'webrtc';
  const storage = radioCards<StorageKind>('storage', STORAGE_CHOICES, options.storage ?? 'indexeddb');
  const error = errorLine();
  const submit = h('button', { type: 'submit', class: 'button primary wide', 'data-testid': 'signup-submit' }, 'Create account');
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const intro = h('p', { class: 'muted' });
  const linkPanel = h('div', { class: 'link-panel', hidden: true });

  const form = h(
    'form',
    { class: 'form' },
    field('Your user id', user, 'What contacts type to reach you: 1–64 letters, digits or . _ @ : + -'),
    field('This device', device, 'A name for this browser, shown in your device list.'),
    h(
      'details',
      { class: 'advanced', 'data-testid': 'signup-advanced' },
      h('summary', null, 'Relay, transport and storage'),
      field('Relay', relay, 'Development relays pin a user id to the first key they see.'),
      h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Transport'), transport.el),
      fallbackField,
      h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Storage'), storage.el),
    ),
    error.el,
    submit,
  );

  const renderTabs = (): void => {
    const tab = (value: typeof mode, label: string): HTMLElement =>
      h('button', { type: 'button', role: 'tab', class: `tab${mode === value ? ' active' : ''}`, 'aria-selected': String(mode === value), 'data-testid': `tab-${value}`, onclick: () => setMode(value) }, label);
    replaceChildren(tabs, tab('signup', 'New account'), tab('link', 'Link to my account'));
    intro.textContent =
      mode === 'signup'
        ? 'Your keys are made here, in this browser, and never leave it. The relay only stores and forwards ciphertext.'
        : 'Use this browser as another device of your account. One of your devices approves it with a code shown here.';
    submit.textContent = mode === 'signup' ? 'Create account' : 'Show link code';
  };
  const setMode = (next: typeof mode): void => {
    mode = next;
    error.show(undefined);
    renderTabs();
  };
  renderTabs();

  const readForm = (): { settings: Settings; profile: Profile } | undefined => {
    const userId = user.value.trim();
    const deviceId = device.value.trim();
    if (!ID_PATTERN.test(userId)) return void error.show('Choose a user id: 1–64 letters, digits or . _ @ : + -');
    if (!ID_PATTERN.test(deviceId)) return void error.show('Name this device: 1–64 letters, digits or . _ @ : + -');
    const problem = checkRelayUrl(relay.value.trim());
    if (problem) return void error.show(`Relay: ${problem}`);
    const settings: Settings = { relayUrl: normalizeRelayUrl(relay.value.trim()), transport: transport.read(), webrtcFallback: fallback.value as RelayTransportKind };
    return { settings, profile: newProfile(userId, deviceId, storage.read()) };
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = readForm();
    if (!input) return;
    const { settings, profile } = input;
    saveSettings(settings);
    if (mode === 'signup') {
      void busy(submit, 'Creating your keys…', async () => {
        try {
          const connection = await connect(settings, profile);
          saveProfile(profile);
          options.done(profile, settings, connection);
        } catch (e) {
          await deleteDeviceStorage(profile).catch(() => undefined);
          error.show(signupError(e, profile.userId));
        }
      });
    } else {
      void busy(submit, 'Preparing…', async () => {
        try {
          await startLinking(settings, profile);
        } catch (e) {
          await deleteDeviceStorage(profile).catch(() => undefined);
          error.show(describeError(e));
        }
      });
    }
  });

  async function startLinking(settings: Settings, profile: Profile): Promise<void> {
    link = await startLink(settings, profile);
    const current = link;
    const cancel = h('button', { type: 'button', class: 'button ghost' }, 'Cancel');
    cancel.addEventListener('click', () => current.cancel());
    const copy = h('button', { type: 'button', class: 'button' }, icon('copy', 16), 'Copy code');
    copy.addEventListener('click', () => void navigator.clipboard?.writeText(current.code).then(() => (copy.lastChild!.textContent = 'Copied')));
    form.hidden = true;
    tabs.hidden = true;
    intro.hidden = true;
    linkPanel.hidden = false;
    replaceChildren(
      linkPanel,
      h('h2', null, `Approve this device on another of ${profile.userId}'s devices`),
      h('p', { class: 'muted' }, 'There: Devices → Link a new device, then paste this code (or scan the QR code). It is good for 10 minutes.'),
      h('div', { class: 'link-qr' }, qrCode(current.code, 'QR code of the link code')),
      h('textarea', { class: 'mono link-code', rows: 3, readonly: true, 'aria-label': 'Link code', 'data-testid': 'link-code', onfocus: (e: FocusEvent) => (e.target as HTMLTextAreaElement).select() }, current.code),
      h('p', { class: 'waiting' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Waiting for approval…'),
      h('div', { class: 'form-actions' }, cancel, copy),
    );
    try {
      await current.completed;
      await Promise.all([current.transport.close(), current.storage.close()]);
      replaceChildren(linkPanel, h('p', { class: 'waiting' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Approved. Connecting…'));
      const connection = await connect(settings, profile);
      saveProfile(profile);
      options.done(profile, settings, connection);
    } catch (e) {
      await Promise.all([current.transport.close(), current.storage.close()]).catch(() => undefined);
      form.hidden = false;
      tabs.hidden = false;
      intro.hidden = false;
      linkPanel.hidden = true;
      throw e;
    }
  }

  replaceChildren(
    root,
    h(
      'div',
      { class: 'onboarding' },
      h(
        'div',
        { class: 'onboarding-card', 'data-testid': 'onboarding' },
        h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, icon('lock', 26)), h('span', null, 'Deadbolt')),
        h('h1', null, 'Private messaging, end to end'),
        options.notice ? h('div', { class: 'banner banner-warn', 'data-testid': 'onboarding-notice' }, icon('alert', 18), h('span', null, options.notice)) : null,
        tabs,
        intro,
        form,
        linkPanel,
      ),
      h('p', { class: 'onboarding-foot muted small' }, 'PQXDH (X25519 + ML-KEM-768) and the Double Ratchet · safety numbers · no plaintext leaves this device'),
    ),
  );
}

/** Sign-up failed: the usual reason is a user id the relay already ties to another key. */
function signupError(e: unknown, userId: string): string {
  if (isDeadboltError(e, 'RELAY_REJECTED') && e.details?.code === 'UNAUTHENTICATED') {
    return `${userId} is already taken on this relay (by another device's key). Choose another user id, or link this browser to that account.`;
  }
  return describeError(e);
}
