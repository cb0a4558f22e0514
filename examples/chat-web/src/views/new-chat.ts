/**
 * Starting conversations: a chat with a user id (who becomes a contact), and a group with
 * a name and members.
 *
 * @module
 */
import type { ChatApp } from '../app.js';
import { avatar, h, icon } from '../dom.js';
import { ID_PATTERN } from '../settings.js';
import { busy, closeModal, errorLine, field, openModal } from './overlay.js';

export function openNewChat(app: ChatApp): void {
  const input = h('input', { type: 'text', placeholder: 'bob', autocomplete: 'off', spellcheck: 'false', autofocus: true, 'data-testid': 'new-chat-user' });
  const error = errorLine();
  const submit = h('button', { type: 'submit', class: 'button primary', 'data-testid': 'new-chat-submit' }, 'Start chat');
  const contacts = app.profile.contacts.filter((c) => !app.chats.some((chat) => chat.ref.kind === 'user' && chat.ref.id === c && chat.lastActivity > 0));
  const form = h(
    'form',
    { class: 'form' },
    field('User id', input, 'The id your contact signed up with. Deadbolt has no directory to search: ask them for it.'),
    error.el,
    h('div', { class: 'form-actions' }, submit),
    contacts.length > 0
      ? h(
          'div',
          { class: 'picker' },
          h('h3', null, 'Contacts'),
          ...contacts.map((c) => h('button', { type: 'button', class: 'picker-item', onclick: () => open(c) }, avatar(c, { size: 'sm' }), c)),
        )
      : null,
  );
  const open = (userId: string): void => {
    app.addContact(userId);
    closeModal();
    void app.openChat({ kind: 'user', id: userId });
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const userId = input.value.trim();
    if (!ID_PATTERN.test(userId)) return error.show('A user id is 1 to 64 letters, digits or . _ @ : + -');
    if (userId === app.me) return error.show('That is you. Pick someone else.');
    open(userId);
  });
  openModal({ title: 'New chat', name: 'new-chat', body: form });
}

export function openNewGroup(app: ChatApp): void {
  const name = h('input', { type: 'text', placeholder: 'Weekend trip', maxlength: 80, autofocus: true, 'data-testid': 'group-name' });
  const extra = h('input', { type: 'text', placeholder: 'carol, dave', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'group-extra' });
  const error = errorLine();
  const submit = h('button', { type: 'submit', class: 'button primary', 'data-testid': 'group-submit' }, icon('users', 18), 'Create group');
  const contacts = [...new Set([...app.profile.contacts, ...app.chats.filter((c) => c.ref.kind === 'user').map((c) => c.ref.id)])].sort();
  const boxes = contacts.map((c) => ({ id: c, box: h('input', { type: 'checkbox', value: c, 'data-testid': 'group-member' }) }));
  const form = h(
    'form',
    { class: 'form' },
    field('Group name', name),
    h(
      'fieldset',
      { class: 'picker' },
      h('legend', null, 'Members'),
      boxes.length === 0 ? h('p', { class: 'muted' }, 'No contacts yet: type user ids below.') : null,
      ...boxes.map(({ id, box }) => h('label', { class: 'picker-item' }, box, avatar(id, { size: 'sm' }), id)),
    ),
    field('Other user ids', extra, 'Separated by commas or spaces. Each must have signed up on this relay.'),
    error.el,
    h('p', { class: 'muted small' }, 'You will be the group’s admin. Every change to the group is signed by the device that makes it and checked by every member: the relay cannot add anyone.'),
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const groupName = name.value.trim();
    const typed = extra.value.split(/[\s,]+/).filter((s) => s.length > 0);
    const members = [...new Set([...boxes.filter((b) => b.box.checked).map((b) => b.id), ...typed])].filter((m) => m !== app.me);
    if (groupName.length === 0) return error.show('Give the group a name.');
    if (new TextEncoder().encode(groupName).length > 255) return error.show('The name is too long.');
    const bad = members.find((m) => !ID_PATTERN.test(m));
    if (bad) return error.show(`“${bad}” is not a user id.`);
    if (members.length === 0) return error.show('Choose at least one member.');
    void busy(
      submit,
      'Creating…',
      async () => {
        await app.createGroup(groupName, members);
        closeModal();
      },
      error.show,
    );
  });
  openModal({ title: 'New group', name: 'new-group', body: form });
}
