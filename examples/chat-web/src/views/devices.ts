/**
 * Device management (docs/multi-device.md): this user's devices from its signed device
 * list, approving a new device from the code it shows, and revoking one.
 *
 * @module
 */
import type { ChatApp } from '../app.js';
import { describeError } from '../connect.js';
import { h, icon, replaceChildren } from '../dom.js';
import { busy, errorLine, openModal } from './overlay.js';

export function openDevices(app: ChatApp): void {
  const list = h('ul', { class: 'device-list', 'data-testid': 'device-list' });
  const listError = errorLine();
  const code = h('textarea', { rows: 3, placeholder: 'deadbolt-link:…', spellcheck: 'false', 'data-testid': 'approve-code', 'aria-label': 'Link code' });
  const manage = h('input', { type: 'checkbox', 'data-testid': 'approve-manage' });
  const approve = h('button', { type: 'submit', class: 'button primary', 'data-testid': 'approve-submit' }, icon('link', 18), 'Approve device');
  const approveError = errorLine();
  const approved = h('p', { class: 'form-ok', 'data-testid': 'approve-ok', hidden: true });
  const form = h(
    'form',
    { class: 'form' },
    h('h3', null, 'Link a new device'),
    h('p', { class: 'muted' }, `On the new browser, choose “Link to my account” and enter ${app.me}. It shows a code (and its QR code): paste the code here. The code is good for 10 minutes and one answer; the relay cannot read or forge the answer.`),
    code,
    h('label', { class: 'check' }, manage, h('span', null, 'Let it link and revoke devices too (hands it the account key)')),
    approveError.el,
    approved,
    h('div', { class: 'form-actions' }, approve),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = code.value.trim();
    if (!text.startsWith('deadbolt-link:')) return approveError.show('Paste the whole code: it starts with “deadbolt-link:”.');
    approved.hidden = true;
    void busy(
      approve,
      'Approving…',
      async () => {
        const client = app.client;
        if (!client) throw new Error('Not connected.');
        const device = await client.approveDevice(text, { canManageDevices: manage.checked });
        code.value = '';
        approved.textContent = `Approved ${device.deviceId}. It receives everything sent to you from now on (there is no history transfer).`;
        approved.hidden = false;
        await render();
      },
      approveError.show,
    );
  });

  const body = h(
    'div',
    { class: 'devices' },
    h('p', { class: 'muted' }, 'Each device has its own keys, vouched for by your account key. Contacts trust the account key, so adding or removing a device changes no safety number.'),
    list,
    listError.el,
    form,
  );
  openModal({ title: 'Your devices', name: 'devices', body, onClose: () => stop() });
  const stop = app.subscribe((changes) => {
    if (changes.has('devices')) void render();
  });
  void render();

  async function render(): Promise<void> {
    const client = app.client;
    if (!client) {
      listError.show('Not connected.');
      return;
    }
    try {
      const devices = await client.devices();
      replaceChildren(
        list,
        ...devices.map((d) =>
          h(
            'li',
            { class: 'device-item', 'data-testid': 'device-item', 'data-device': d.deviceId },
            h('span', { class: 'device-icon' }, icon('devices', 20)),
            h(
              'span',
              { class: 'device-body' },
              h('strong', null, d.deviceId),
              h('span', { class: 'muted small' }, d.thisDevice ? `This browser · ${app.profile.storage === 'indexeddb' ? 'IndexedDB' : 'memory'} storage` : 'Linked device'),
            ),
            d.thisDevice ? h('span', { class: 'tag', 'data-testid': 'this-device' }, 'This device') : revokeButton(d.deviceId),
          ),
        ),
      );
      listError.show(undefined);
    } catch (e) {
      listError.show(describeError(e));
    }
  }

  function revokeButton(deviceId: string): HTMLElement {
    const button = h('button', { class: 'button small danger', 'data-testid': 'revoke' }, icon('trash', 16), 'Revoke');
    button.addEventListener('click', () => {
      if (!confirm(`Revoke ${deviceId}? It will receive nothing new, and the relay will refuse it.`)) return;
      void busy(
        button,
        'Revoking…',
        async () => {
          await app.client?.revokeDevice(deviceId);
          await render();
        },
        listError.show,
      );
    });
    return button;
  }
}
