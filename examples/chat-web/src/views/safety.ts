/**
 * The safety-number screen (docs/messaging.md, protocol §9): the 60 digits and the QR code
 * two users compare to verify each other's account keys; checking a number typed or pasted
 * from the other screen; marking the contact verified; and reviewing a changed key.
 *
 * @module
 */
import { formatSafetyNumber, type SafetyNumber } from '@deadbolt/core';
import { isDeadboltError } from '@deadbolt/spec';
import type { ChatApp } from '../app.js';
import { describeError } from '../connect.js';
import { avatar, h, icon, replaceChildren } from '../dom.js';
import { qrCode } from '../qr.js';
import { busy, errorLine, openModal } from './overlay.js';

function digitsGrid(sn: SafetyNumber, testid: string): HTMLElement {
  const groups = formatSafetyNumber(sn.digits).split(' ');
  return h('div', { class: 'safety-digits', 'data-testid': testid, 'data-digits': sn.digits }, ...groups.map((g) => h('span', null, g)));
}

export function openSafetyNumber(app: ChatApp, userId: string): void {
  const body = h('div', { class: 'safety' });
  openModal({ title: `Verify ${userId}`, name: 'safety', body, wide: true });
  void render();

  async function render(): Promise<void> {
    const client = app.client;
    if (!client) {
      replaceChildren(body, h('p', null, 'Not connected: open Settings.'));
      return;
    }
    const trust = await app.refreshTrust(userId);
    let sn: SafetyNumber;
    try {
      sn = await client.safetyNumber(userId);
    } catch (e) {
      replaceChildren(
        body,
        h(
          'div',
          { class: 'safety-unknown', 'data-testid': 'safety-unknown' },
          icon('shield', 40),
          h('p', null, isDeadboltError(e, 'NOT_INITIALIZED') ? `There is no safety number with ${userId} yet: it is made from both of your keys, and this device learns ${userId}'s key with the first message you exchange.` : describeError(e, { peer: userId })),
        ),
      );
      return;
    }
    const status = h(
      'div',
      { class: `safety-status ${trust.verified ? 'is-verified' : ''}`, 'data-testid': 'safety-status', 'data-verified': String(trust.verified) },
      icon(trust.verified ? 'shield-check' : 'shield', 18),
      trust.verified ? `You have verified ${userId}` : `${userId} is not verified`,
    );
    const compare = h('textarea', { rows: 2, placeholder: '12345 67890 …', spellcheck: 'false', 'data-testid': 'safety-compare-input', 'aria-label': `${userId}'s safety number` });
    const result = errorLine();
    const ok = h('p', { class: 'form-ok', 'data-testid': 'safety-compare-ok', hidden: true });
    const check = h('button', { type: 'submit', class: 'button primary', 'data-testid': 'safety-compare-submit' }, 'Compare');
    const form = h(
      'form',
      { class: 'form safety-compare' },
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, `Type or paste the number ${userId}'s screen shows`), compare),
      result.el,
      ok,
      h('div', { class: 'form-actions' }, check),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const typed = compare.value.replace(/\s+/g, '');
      if (!/^\d{60}$/.test(typed)) return result.show('A safety number is 60 digits (spaces are fine).');
      void busy(
        check,
        'Comparing…',
        async () => {
          const same = await client.verifySafetyNumber(userId, typed);
          if (!same) {
            result.show(`The numbers are DIFFERENT. Check them again; if they really differ, someone may be between you and ${userId}: do not trust this conversation.`);
            return;
          }
          await render();
        },
        result.show,
      );
    });
    const mark = trust.verified
      ? h('button', { class: 'button ghost', 'data-testid': 'safety-clear', onclick: () => void setVerified(false) }, 'Clear verification')
      : h('button', { class: 'button', 'data-testid': 'safety-mark-verified', onclick: () => void setVerified(true) }, icon('shield-check', 18), 'Mark as verified');
    const setVerified = async (verified: boolean): Promise<void> => {
      await client.sessions.setVerified(userId, verified);
      await render();
    };
    replaceChildren(
      body,
      h('div', { class: 'safety-parties' }, avatar(app.me, { size: 'lg' }), h('span', { class: 'safety-link' }, icon('lock', 18)), avatar(userId, { size: 'lg' })),
      status,
      trust.pending ? await pendingSection() : null,
      h(
        'div',
        { class: 'safety-main' },
        h('div', { class: 'safety-qr', 'data-testid': 'safety-qr' }, qrCode(sn.qr, `QR code of the safety number with ${userId}`)),
        h(
          'div',
          { class: 'safety-number' },
          digitsGrid(sn, 'safety-digits'),
          h('p', { class: 'muted' }, `Compare these numbers with the ones on ${userId}'s device, in person or over a channel you trust, or scan one QR code with the other device. They are the same on both sides, and stay the same when either of you adds a device.`),
        ),
      ),
      form,
      h('div', { class: 'form-actions split' }, h('span', { class: 'muted small' }, 'Compared them by eye?'), mark),
    );
  }

  /** A changed key waiting for a decision: its number, then accept or reject. */
  async function pendingSection(): Promise<HTMLElement> {
    const client = app.client!;
    const error = errorLine();
    let pending: SafetyNumber | undefined;
    try {
      pending = await client.pendingSafetyNumber(userId);
    } catch (e) {
      error.show(describeError(e));
    }
    const accept = h('button', { class: 'button primary' }, 'Accept the new key');
    const reject = h('button', { class: 'button danger' }, 'Reject it');
    accept.addEventListener('click', () =>
      void busy(
        accept,
        'Accepting…',
        async () => {
          const key = (await client.sessions.trust(userId))?.pendingKey;
          if (!key) throw new Error('The change was already handled.');
          await client.acceptIdentity(userId, key);
          await render();
        },
        error.show,
      ),
    );
    reject.addEventListener('click', () =>
      void busy(
        reject,
        'Rejecting…',
        async () => {
          await client.rejectIdentity(userId);
          await render();
        },
        error.show,
      ),
    );
    return h(
      'div',
      { class: 'banner banner-warn safety-pending', 'data-testid': 'safety-pending' },
      icon('shield-alert', 20),
      h(
        'div',
        null,
        h('strong', null, `${userId}'s key changed.`),
        h('p', null, `Nothing is sent to ${userId} until you decide. Compare the new number with ${userId} first; accepting clears “verified”.`),
        pending ? digitsGrid(pending, 'safety-pending-digits') : null,
        error.el,
        h('div', { class: 'form-actions' }, reject, accept),
      ),
    );
  }
}
