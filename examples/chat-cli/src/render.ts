/**
 * Turning messages, groups and safety numbers into lines of text. Pure functions: the
 * REPL decides where the lines go.
 */
import { formatSafetyNumber, type GroupInfo, type GroupMemberStatus, type StoredGroupMessage, type StoredMessage } from '@deadbolt/core';

const decoder = new TextDecoder();
const time = (ms: number): string => new Date(ms).toTimeString().slice(0, 8);
const color = process.stdout.isTTY && !process.env.NO_COLOR;
export const dim = (s: string): string => (color ? `\x1b[2m${s}\x1b[0m` : s);
export const bold = (s: string): string => (color ? `\x1b[1m${s}\x1b[0m` : s);
export const warn = (s: string): string => (color ? `\x1b[33m${s}\x1b[0m` : s);

/** `12:00:01 bob: hi` plus the delivery state: pending, sent, failed (outgoing) or received. */
export function messageLine(m: StoredMessage | StoredGroupMessage, where?: string): string {
  const at = m.direction === 'incoming' ? m.receivedAt : m.sentAt;
  const who = m.direction === 'outgoing' ? 'me' : m.sender.userId;
  const flag = m.untrusted ? warn(' [UNTRUSTED KEY]') : '';
  const prefix = where ? `[${where}] ` : '';
  return `${dim(time(at))} ${prefix}${bold(who)}: ${decoder.decode(m.body)}${flag} ${dim(`(${m.status})`)}`;
}

/** A group in one line: `team  3 members  ab12cd34…`. */
export function groupLine(g: GroupInfo): string {
  return `${bold(g.name)}  ${g.members.length} members  ${dim(g.groupId.slice(0, 12))}${g.member ? '' : dim('  (left)')}`;
}

export function memberLine(m: GroupMemberStatus): string {
  return `  ${m.userId}${m.role === 'admin' ? ' (admin)' : ''}  devices: ${m.devices.join(', ')}${m.untrusted ? warn('  UNTRUSTED') : ''}`;
}

/** The 60 digits in twelve groups of five, on two lines as apps show them. */
export function safetyNumberLines(userId: string, digits: string, verified: boolean): string[] {
  const groups = formatSafetyNumber(digits).split(' ');
  return [
    `Safety number with ${userId}${verified ? ' (verified)' : ''}:`,
    `  ${groups.slice(0, 6).join(' ')}`,
    `  ${groups.slice(6).join(' ')}`,
    dim(`Compare it with ${userId}'s screen, then: /verify ${userId} <the 60 digits>`),
  ];
}

export const HELP = [
  '/to <user>                          chat with a user (plain lines are sent to the current chat)',
  '/add <user>                         add a contact (a contact is a user id)',
  '/contacts                           contacts and 1:1 conversations',
  '/group create <name> <members...>   create a group and switch to it',
  '/group <name|id>                    switch to a group',
  '/groups                             your groups',
  '/members                            members of the current group',
  '/history [n]                        the last n messages (default 20) of the current chat, with delivery state',
  '/safety <user>                      show the safety number with a user',
  '/verify <user> <digits>             mark a user verified if the 60 digits match',
  '/devices                            your devices',
  '/approve <code>                     approve a new device of yours (its /link code)',
  '/quit                               leave',
];

export const SETUP_HELP = [
  '/signup    create your identity on this device (first device of a new user)',
  '/link      link this device to your existing account: prints a code to /approve on another device',
  '/quit      leave',
];
