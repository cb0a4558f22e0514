/**
 * The chat pane: the header (who, verification, the WebRTC path), warnings, the messages
 * with their delivery state, and the composer.
 *
 * @module
 */
import type { ChatApp, MessageView } from '../app.js';
import { avatar, clockTime, dayLabel, h, icon, idHue, replaceChildren, sameDay, type IconName } from '../dom.js';

export interface ChatActions {
  safety(userId: string): void;
  groupInfo(groupId: string): void;
  newChat(): void;
  settings(): void;
}

const STATUS: Record<MessageView['status'], { readonly icon: IconName | undefined; readonly label: string }> = {
  pending: { icon: 'clock', label: 'Sending…' },
  sent: { icon: 'check', label: 'Sent: stored at the relay for every device' },
  received: { icon: undefined, label: 'Received' },
  failed: { icon: 'alert', label: 'Not delivered' },
  stale: { icon: 'alert', label: 'Not delivered (the page closed while sending)' },
};

export function createChatPane(app: ChatApp, actions: ChatActions): { readonly el: HTMLElement; render(): void; renderMessages(): void } {
  const header = h('header', { class: 'chat-header' });
  const banner = h('div', { class: 'banners' });
  const messages = h('div', { class: 'messages', 'data-testid': 'messages', role: 'log', 'aria-live': 'polite' });
  const input = h('textarea', { rows: 1, placeholder: 'Message', 'aria-label': 'Message', 'data-testid': 'composer-input' });
  const send = h('button', { type: 'submit', class: 'send-button', title: 'Send', 'aria-label': 'Send', 'data-testid': 'composer-send' }, icon('send'));
  const composer = h('form', { class: 'composer' }, input, send);
  const conversation = h('section', { class: 'conversation' }, header, banner, messages, composer);
  const empty = h(
    'section',
    { class: 'chat-empty', 'data-testid': 'chat-empty' },
    h('div', { class: 'chat-empty-art' }, icon('lock', 44)),
    h('h2', null, 'Private by design'),
    h('p', null, 'Messages, group changes and call set-up are end-to-end encrypted. The relay only ever stores padded ciphertext.'),
    h('button', { class: 'button primary', onclick: actions.newChat }, icon('edit', 18), 'Start a conversation'),
  );
  const el = h('main', { class: 'chat' }, empty);
  let shownKey = '';

  const submit = (): void => {
    const text = input.value;
    if (text.trim() === '') return;
    input.value = '';
    grow();
    void app.send(text);
  };
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  const grow = (): void => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  };
  input.addEventListener('input', grow);

  function renderHeader(): void {
    const ref = app.current;
    if (!ref) return;
    if (ref.kind === 'user') {
      const trust = app.trust.get(ref.id);
      const state = trust?.pending ? 'changed' : trust?.verified ? 'verified' : 'unverified';
      const label = state === 'changed' ? 'Safety number changed' : state === 'verified' ? 'Verified' : 'Not verified';
      const webrtc = app.settings.transport === 'webrtc';
      const path = app.pathTo(ref.id);
      replaceChildren(
        header,
        back(),
        avatar(ref.id),
        h('div', { class: 'chat-header-title' }, h('h2', { 'data-testid': 'chat-title' }, ref.id), h('span', { class: 'sub' }, icon('lock', 13), 'End-to-end encrypted')),
        h(
          'div',
          { class: 'chat-header-actions' },
          webrtc
            ? h(
                'span',
                { class: `path-badge path-${path}`, 'data-testid': 'path-badge', 'data-path': path, title: path === 'direct' ? 'Messages go over a direct WebRTC data channel' : 'No direct link now: messages go through the relay' },
                icon(path === 'direct' ? 'zap' : 'cloud', 15),
                path === 'direct' ? 'Direct' : 'Via relay',
              )
            : null,
          h(
            'button',
            { class: `trust-button trust-${state}`, 'data-testid': 'open-safety', 'data-verified': String(state === 'verified'), title: 'Safety number', onclick: () => actions.safety(ref.id) },
            icon(state === 'verified' ? 'shield-check' : state === 'changed' ? 'shield-alert' : 'shield', 17),
            label,
          ),
        ),
      );
    } else {
      const g = app.currentGroup;
      const title = g?.name ?? app.chats.find((c) => c.ref.kind === 'group' && c.ref.id === ref.id)?.title ?? 'Group';
      const members = g ? g.members.map((m) => (m.userId === app.me ? 'you' : m.userId)).join(', ') : '';
      replaceChildren(
        header,
        back(),
        avatar(ref.id, { group: true }),
        h('div', { class: 'chat-header-title' }, h('h2', { 'data-testid': 'chat-title' }, title), h('span', { class: 'sub', 'data-testid': 'group-members' }, g ? `${g.members.length} members · ${members}` : '')),
        h('div', { class: 'chat-header-actions' }, h('button', { class: 'trust-button', 'data-testid': 'open-group-info', title: 'Group info', onclick: () => actions.groupInfo(ref.id) }, icon('info', 17), 'Group info')),
      );
    }
  }

  /** Back to the list (narrow screens, where the list and the chat do not fit side by side). */
  const back = (): HTMLElement => h('button', { class: 'icon-button back', title: 'Back', 'aria-label': 'Back to conversations', onclick: () => app.closeChat() }, icon('back'));

  function renderBanners(): void {
    const ref = app.current;
    const items: HTMLElement[] = [];
    if (app.state === 'failed') {
      items.push(
        h(
          'div',
          { class: 'banner banner-error', 'data-testid': 'banner-offline' },
          icon('alert', 18),
          h('span', null, app.startError ?? 'Cannot reach the relay.'),
          h('button', { class: 'button small', onclick: () => void app.retry() }, icon('refresh', 16), 'Retry'),
          h('button', { class: 'button small ghost', onclick: actions.settings }, 'Settings'),
        ),
      );
    }
    if (ref?.kind === 'user' && app.trust.get(ref.id)?.pending) {
      items.push(
        h(
          'div',
          { class: 'banner banner-warn', 'data-testid': 'banner-identity' },
          icon('shield-alert', 18),
          h('span', null, `${ref.id}'s safety number changed: they may have reinstalled, or someone may be in between. Nothing is sent to them until you review it.`),
          h('button', { class: 'button small', onclick: () => actions.safety(ref.id) }, 'Review'),
        ),
      );
    }
    if (ref?.kind === 'group' && app.currentGroup && !app.currentGroup.member) {
      items.push(h('div', { class: 'banner' }, icon('info', 18), h('span', null, 'You are no longer a member of this group. Its history stays on this device.')));
    }
    replaceChildren(banner, ...items);
  }

  function messageEl(m: MessageView, previous: MessageView | undefined): HTMLElement {
    const out = m.direction === 'outgoing';
    const group = app.current?.kind === 'group';
    const continued = previous !== undefined && previous.direction === m.direction && previous.senderUser === m.senderUser && m.at - previous.at < 5 * 60_000 && sameDay(previous.at, m.at);
    const status = STATUS[m.status];
    const otherDevice = out && m.senderDevice !== app.profile.deviceId;
    return h(
      'div',
      {
        class: `message ${out ? 'out' : 'in'}${continued ? ' continued' : ''}${m.status === 'failed' || m.status === 'stale' ? ' failed' : ''}`,
        'data-testid': 'message',
        'data-direction': m.direction,
        'data-status': m.status,
        'data-sender': m.senderUser,
      },
      group && !out && !continued ? h('span', { class: 'sender', style: `--avatar-hue: ${idHue(m.senderUser)}` }, m.senderUser) : null,
      h(
        'div',
        { class: 'bubble' },
        h('span', { class: 'text' }, m.text),
        h(
          'span',
          { class: 'meta' },
          m.untrusted ? h('span', { class: 'untrusted', title: 'Sent under a key you have not accepted' }, icon('shield-alert', 13), 'unverified key') : null,
          otherDevice ? h('span', { class: 'device', title: 'Sent from your other device' }, m.senderDevice) : null,
          h('time', null, clockTime(m.at)),
          status.icon ? h('span', { class: `state state-${m.status}`, title: status.label, 'aria-label': status.label, 'data-testid': 'delivery' }, icon(status.icon, 14)) : null,
        ),
      ),
      m.status === 'failed' || m.status === 'stale'
        ? h('button', { class: 'retry', 'data-testid': 'retry', onclick: () => void app.send(m.text) }, icon('refresh', 14), 'Not delivered · Send again')
        : null,
    );
  }

  /** Set while an earlier page is read: the view then stays on the message it showed. */
  let keepFromBottom: number | undefined;
  const earlier = (): HTMLElement => {
    const button = h('button', { class: 'button earlier', 'data-testid': 'load-earlier' }, 'Earlier messages');
    button.addEventListener('click', () => {
      button.setAttribute('disabled', '');
      keepFromBottom = messages.scrollHeight - messages.scrollTop;
      void app.loadEarlier();
    });
    return h('div', { class: 'earlier-row' }, button);
  };

  function renderMessages(): void {
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
    const items: HTMLElement[] = [
      app.hasEarlier ? earlier() : h('div', { class: 'encryption-note' }, icon('lock', 14), 'Messages here are end-to-end encrypted. Not even the relay can read them.'),
    ];
    let previous: MessageView | undefined;
    for (const m of app.messages) {
      if (!previous || !sameDay(previous.at, m.at)) {
        items.push(h('div', { class: 'day' }, h('span', null, dayLabel(m.at))));
        previous = undefined;
      }
      items.push(messageEl(m, previous));
      previous = m;
    }
    replaceChildren(messages, ...items);
    const last = app.messages.at(-1);
    if (keepFromBottom !== undefined && key() === shownKey) messages.scrollTop = messages.scrollHeight - keepFromBottom;
    else if (atBottom || last?.direction === 'outgoing' || key() !== shownKey) messages.scrollTop = messages.scrollHeight;
    keepFromBottom = undefined;
    shownKey = key();
  }

  const key = (): string => (app.current ? `${app.current.kind}:${app.current.id}` : '');

  function render(): void {
    const ref = app.current;
    el.classList.toggle('has-chat', ref !== undefined);
    if (!ref) {
      if (el.firstChild !== empty) el.replaceChildren(empty);
      renderBanners();
      if (banner.childElementCount > 0) empty.prepend(banner);
      return;
    }
    if (banner.parentElement !== conversation) header.after(banner);
    if (el.firstChild !== conversation) el.replaceChildren(conversation);
    renderHeader();
    renderBanners();
    const placeholder = ref.kind === 'user' ? `Message ${ref.id}` : `Message ${app.currentGroup?.name ?? 'the group'}`;
    if (input.placeholder !== placeholder) {
      input.placeholder = placeholder;
      input.setAttribute('aria-label', placeholder);
      input.focus();
    }
    const canSend = ref.kind === 'user' || app.currentGroup?.member !== false;
    input.disabled = !canSend;
    send.disabled = !canSend;
  }

  return { el, render, renderMessages };
}
