/**
 * Modal dialogs and toasts: one dialog at a time, closed by its close button, Escape or a
 * click outside it.
 *
 * @module
 */
import { describeError } from '../connect.js';
import { h, icon, type Child } from '../dom.js';

export interface ModalOptions {
  readonly title: string;
  /** `data-modal` of the dialog (tests and screenshots find it by that). */
  readonly name: string;
  readonly body: Child;
  readonly wide?: boolean;
  readonly onClose?: () => void;
}

let closeCurrent: (() => void) | undefined;

/** Opens a dialog (closing any other); returns the function that closes it. */
export function openModal(options: ModalOptions): () => void {
  closeCurrent?.();
  const root = document.getElementById('modal-root')!;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    document.removeEventListener('keydown', onKey);
    backdrop.remove();
    if (closeCurrent === close) closeCurrent = undefined;
    options.onClose?.();
  };
  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape') close();
  };
  const dialog = h(
    'section',
    { class: `modal${options.wide ? ' modal-wide' : ''}`, role: 'dialog', 'aria-modal': 'true', 'aria-label': options.title, 'data-modal': options.name, 'data-testid': 'modal' },
    h('header', { class: 'modal-header' }, h('h2', null, options.title), h('button', { class: 'icon-button', title: 'Close', 'aria-label': 'Close', 'data-testid': 'modal-close', onclick: close }, icon('x'))),
    h('div', { class: 'modal-body' }, options.body),
  );
  const backdrop = h('div', { class: 'backdrop', onmousedown: (e: MouseEvent) => e.target === backdrop && close() }, dialog);
  root.appendChild(backdrop);
  document.addEventListener('keydown', onKey);
  closeCurrent = close;
  dialog.querySelector<HTMLElement>('[autofocus]')?.focus();
  return close;
}

/** Closes the open dialog, if any. */
export function closeModal(): void {
  closeCurrent?.();
}

/** A message at the bottom of the screen for a few seconds. */
export function toast(text: string, kind: 'info' | 'warn' | 'error' = 'info'): void {
  const root = document.getElementById('toast-root')!;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'toast' }, icon(kind === 'info' ? 'info' : 'alert', 18), h('span', null, text));
  root.appendChild(el);
  setTimeout(() => {
    el.classList.add('toast-leaving');
    setTimeout(() => el.remove(), 300);
  }, kind === 'info' ? 3500 : 6000);
}

/** A labelled form field. */
export function field(label: string, control: HTMLElement, hint?: Child): HTMLElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control, hint ? h('span', { class: 'field-hint' }, hint) : null);
}

/** An inline error line under a form, empty until `show` is called. */
export function errorLine(): { readonly el: HTMLElement; show(text: string | undefined): void } {
  const el = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'form-error', hidden: true });
  return {
    el,
    show(text) {
      el.textContent = text ?? '';
      el.hidden = !text;
    },
  };
}

/** Runs `action` with `button` disabled and showing `busyLabel`; errors go to `error`. */
export async function busy(button: HTMLButtonElement, busyLabel: string, action: () => Promise<void>, error?: (text: string | undefined) => void): Promise<void> {
  const label = [...button.childNodes];
  button.disabled = true;
  button.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), busyLabel);
  error?.(undefined);
  try {
    await action();
  } catch (e) {
    if (error) error(describeError(e));
    else throw e;
  } finally {
    button.disabled = false;
    button.replaceChildren(...label);
  }
}
