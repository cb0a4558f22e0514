/**
 * A group's members and what an admin can change: add and remove members, rename; and
 * leaving. Every change is one signed change checked by every member (docs/groups.md).
 *
 * @module
 */
import type { Group, GroupMemberStatus } from '@deadbolt/core';
import type { ChatApp } from '../app.js';
import { avatar, h, icon, replaceChildren } from '../dom.js';
import { ID_PATTERN } from '../settings.js';
import { busy, errorLine, field, openModal } from './overlay.js';
import { openSafetyNumber } from './safety.js';

export function openGroupInfo(app: ChatApp, groupId: string): void {
  const body = h('div', { class: 'group-info' });
  openModal({ title: 'Group info', name: 'group-info', body, wide: true });
  void render();

  async function render(): Promise<void> {
    const client = app.client;
    const group = await client?.group(groupId);
    if (!client || !group) {
      replaceChildren(body, h('p', null, 'This device does not know this group.'));
      return;
    }
    const info = await group.info();
    const members = await group.members();
    if (app.current?.kind === 'group' && app.current.id === groupId) void app.refreshOpenChat();
    const admin = info.member && members.some((m) => m.userId === app.me && m.role === 'admin');
    const error = errorLine();
    replaceChildren(
      body,
      h(
        'div',
        { class: 'group-heading' },
        avatar(groupId, { group: true, size: 'lg' }),
        h('div', null, h('h3', null, info.name), h('span', { class: 'muted small mono', title: groupId }, `${members.length} members · id ${groupId.slice(0, 16)}…`)),
      ),
      admin ? renameForm(group, info.name) : null,
      h('h4', null, 'Members'),
      h('ul', { class: 'member-list', 'data-testid': 'member-list' }, ...members.map((m) => memberItem(group, m, admin, error.show))),
      error.el,
      admin ? addForm(group, members) : null,
      info.member ? leaveButton(group, error.show) : h('p', { class: 'muted' }, 'You are no longer in this group.'),
    );
  }

  function memberItem(group: Group, m: GroupMemberStatus, admin: boolean, showError: (text: string | undefined) => void): HTMLElement {
    const me = m.userId === app.me;
    const remove = h('button', { class: 'button small ghost' }, 'Remove');
    remove.addEventListener('click', () => {
      if (!confirm(`Remove ${m.userId} from the group? They cannot read anything sent afterwards.`)) return;
      void busy(
        remove,
        'Removing…',
        async () => {
          await group.removeMembers([m.userId]);
          await render();
        },
        showError,
      );
    });
    return h(
      'li',
      { class: 'member', 'data-testid': 'member', 'data-user': m.userId },
      avatar(m.userId, { size: 'sm' }),
      h(
        'span',
        { class: 'member-body' },
        h('strong', null, me ? `${m.userId} (you)` : m.userId),
        h('span', { class: 'muted small' }, `${m.devices.length} device${m.devices.length === 1 ? '' : 's'}${m.role === 'admin' ? ' · admin' : ''}`),
      ),
      m.untrusted ? h('span', { class: 'tag tag-warn', title: 'Their key in the group is not the one you trust: nothing is sent to them' }, icon('shield-alert', 14), 'Key changed') : null,
      me ? null : h('button', { class: 'button small ghost', onclick: () => openSafetyNumber(app, m.userId) }, icon('shield', 15), 'Verify'),
      admin && !me ? remove : null,
    );
  }

  function renameForm(group: Group, name: string): HTMLElement {
    const input = h('input', { type: 'text', value: name, maxlength: 80 });
    const save = h('button', { type: 'submit', class: 'button small' }, 'Rename');
    const error = errorLine();
    const form = h('form', { class: 'inline-form' }, input, save, error.el);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const next = input.value.trim();
      if (next.length === 0 || next === name) return;
      void busy(
        save,
        'Saving…',
        async () => {
          await group.rename(next);
          await app.refreshChats();
          await render();
        },
        error.show,
      );
    });
    return form;
  }

  function addForm(group: Group, members: readonly GroupMemberStatus[]): HTMLElement {
    const candidates = app.profile.contacts.filter((c) => !members.some((m) => m.userId === c));
    const input = h('input', { type: 'text', placeholder: candidates.length > 0 ? candidates.slice(0, 3).join(', ') : 'user ids', list: 'group-add-candidates', 'data-testid': 'group-add-user' });
    const add = h('button', { type: 'submit', class: 'button small' }, icon('plus', 16), 'Add');
    const error = errorLine();
    const form = h(
      'form',
      { class: 'form' },
      field('Add members', h('div', { class: 'inline-form' }, input, add), 'Each one gets the group with every device of theirs this device can reach.'),
      h('datalist', { id: 'group-add-candidates' }, ...candidates.map((c) => h('option', { value: c }))),
      error.el,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const ids = input.value.split(/[\s,]+/).filter((s) => s.length > 0);
      const bad = ids.find((id) => !ID_PATTERN.test(id));
      if (ids.length === 0 || bad) return error.show(bad ? `“${bad}” is not a user id.` : 'Type at least one user id.');
      void busy(
        add,
        'Adding…',
        async () => {
          await group.addMembers(ids);
          for (const id of ids) app.addContact(id);
          await render();
        },
        error.show,
      );
    });
    return form;
  }

  function leaveButton(group: Group, showError: (text: string | undefined) => void): HTMLElement {
    const leave = h('button', { class: 'button danger ghost', 'data-testid': 'group-leave' }, icon('logout', 18), 'Leave group');
    leave.addEventListener('click', () => {
      if (!confirm('Leave this group? You will receive nothing sent to it afterwards; its history stays here.')) return;
      void busy(
        leave,
        'Leaving…',
        async () => {
          await group.leave();
          await app.refreshChats();
          await render();
        },
        showError,
      );
    });
    return h('div', { class: 'form-actions' }, leave);
  }
}
