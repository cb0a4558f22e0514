/**
 * Drives real chat-cli processes in real pseudo-terminals (tmux, on a private socket)
 * against a real relay on loopback: sign-up, 1:1 messages, safety numbers, a group of
 * three, linking a second device, a restart from the data directory. Every step waits
 * for the expected text on screen, with a deadline; nothing sleeps a fixed time.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRelay, silentRelayLogger, type Relay } from '@deadbolt/relay';

const run = promisify(execFile);
const cwd = fileURLToPath(new URL('..', import.meta.url));
const socket = `deadbolt-chat-cli-test-${process.pid}`;
const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-L', socket, ...args], { encoding: 'utf8' })).stdout;

let relay: Relay;
let dir: string;

beforeAll(async () => {
  relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentRelayLogger });
  dir = mkdtempSync(join(tmpdir(), 'deadbolt-chat-cli-'));
});

afterAll(async () => {
  await tmux('kill-server').catch(() => undefined); // our private tmux server only
  await relay?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts the CLI in a new tmux session (a real terminal, 200 columns wide). */
async function launch(session: string, flags: string[]): Promise<void> {
  const cmd = [process.execPath, '--conditions=@deadbolt/source', '--import', 'tsx', 'src/main.ts', ...flags].map((a) => `'${a}'`).join(' ');
  await tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '60', '-c', cwd, cmd);
  await tmux('set-option', '-t', session, 'remain-on-exit', 'on'); // keep a crash's output readable
}

/** The whole scrollback of a session, wrapped lines joined. */
const screen = (session: string): Promise<string> => tmux('capture-pane', '-p', '-J', '-S', '-5000', '-t', session);

/** Waits until `pattern` is on screen `times` times; returns the screen. */
async function waitFor(session: string, pattern: string | RegExp, times = 1, timeoutMs = 40_000): Promise<string> {
  const re = typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await screen(session);
    if ((text.match(re)?.length ?? 0) >= times) return text;
    if (Date.now() > deadline) throw new Error(`${session}: waited ${timeoutMs} ms for ${re} x${times}; the screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100)); // poll interval, not a wait for an outcome
  }
}

/**
 * Waits until the session's process has exited. Read from /proc rather than from tmux:
 * tmux can be slow to reap the process and mark the pane dead.
 */
async function waitForExit(session: string, timeoutMs = 20_000): Promise<void> {
  const pid = (await tmux('display-message', '-p', '-t', session, '#{pane_pid}')).trim();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) return; // gone, or exited and not reaped yet
    if (Date.now() > deadline) throw new Error(`${session}: process ${pid} still running after ${timeoutMs} ms:\n${await screen(session)}`);
    await new Promise((r) => setTimeout(r, 100)); // poll interval
  }
}

/** Types a line and presses Enter. */
async function type(session: string, line: string): Promise<void> {
  await tmux('send-keys', '-t', session, '-l', line);
  await tmux('send-keys', '-t', session, 'Enter');
}

const flags = (name: string, user: string, transport: 'websocket' | 'http', device?: string): string[] => [
  '--data', join(dir, name), '--user', user, '--transport', transport, '--relay', relay.url, ...(device ? ['--device', device] : []),
];

test('two users chat 1:1, verify a safety number, talk in a group of three, link a device and restart', async () => {
  // Sign up: alice and carol on WebSocket, bob on HTTP long-polling.
  await launch('alice', flags('alice', 'alice', 'websocket', 'phone'));
  await launch('bob', flags('bob', 'bob', 'http', 'laptop'));
  // carol takes her settings from a JSON config file instead of flags.
  const config = join(dir, 'carol.json');
  writeFileSync(config, JSON.stringify({ data: join(dir, 'carol'), user: 'carol', device: 'tablet', transport: 'websocket', relay: relay.url }));
  await launch('carol', ['--config', config]);
  for (const s of ['alice', 'bob', 'carol']) {
    await waitFor(s, 'New device in');
    await type(s, '/signup');
  }
  for (const [s, d] of [['alice', 'phone'], ['bob', 'laptop'], ['carol', 'tablet']] as const) await waitFor(s, `Signed in as ${s}/${d}.`);

  // 1:1 both ways.
  await type('alice', '/to bob');
  await type('alice', 'Hi Bob, over WebSocket');
  await waitFor('alice', /me: Hi Bob, over WebSocket \(sent\)/);
  await waitFor('bob', /\[@alice\] alice: Hi Bob, over WebSocket \(received\)/);
  await type('bob', '/to alice');
  await type('bob', 'Hi Alice, over long-polling');
  await waitFor('alice', /bob: Hi Alice, over long-polling \(received\)/);

  // Safety number: bob reads his 60 digits, alice types them. A wrong number is refused first.
  await type('bob', '/safety alice');
  const bobScreen = await waitFor('bob', /Safety number with alice:\n {2}((?:\d{5} ){5}\d{5})\n {2}((?:\d{5} ){5}\d{5})/);
  const [, first, second] = /Safety number with alice:\n {2}((?:\d{5} ){5}\d{5})\n {2}((?:\d{5} ){5}\d{5})/.exec(bobScreen)!;
  await type('alice', `/verify bob ${'1'.repeat(60)}`);
  await waitFor('alice', 'The numbers DIFFER');
  await type('alice', `/verify bob ${first} ${second}`);
  await waitFor('alice', 'bob is verified.');
  await type('alice', '/contacts');
  await waitFor('alice', /^ {2}bob {2}verified/m);
  await type('alice', '/safety bob');
  await waitFor('alice', `Safety number with bob (verified):\n  ${first}\n  ${second}`);

  // History shows the delivery state.
  await type('alice', '/history');
  const history = await waitFor('alice', /me: Hi Bob, over WebSocket \(sent\)[^]*bob: Hi Alice, over long-polling \(received\)/);
  expect(history).not.toContain('(failed)');

  // A group of the three: created by alice, a message reaches both others, and back.
  await type('alice', '/group create team bob carol');
  await waitFor('alice', 'Created group team with bob, carol. Now chatting in team.');
  await type('alice', 'Hello team');
  await waitFor('alice', /\[#team\] me: Hello team \(sent\)/);
  for (const s of ['bob', 'carol']) await waitFor(s, /\[#team\] alice: Hello team \(received\)/);
  await type('carol', '/group team');
  await waitFor('carol', 'Now chatting in team.');
  await type('carol', 'Hi both, carol here');
  for (const s of ['alice', 'bob']) await waitFor(s, /\[#team\] carol: Hi both, carol here \(received\)/);
  await type('alice', '/members');
  await waitFor('alice', /Members of team:\n {2}alice \(admin\) {2}devices: phone\n {2}bob {2}devices: laptop\n {2}carol {2}devices: tablet/);

  // Link a second device of alice: /link prints the code, alice's phone approves it.
  await launch('alice-laptop', flags('alice-laptop', 'alice', 'websocket', 'laptop'));
  await waitFor('alice-laptop', 'New device in');
  await type('alice-laptop', '/link');
  const code = /\/approve (deadbolt-link:\S+)/.exec(await waitFor('alice-laptop', /\/approve deadbolt-link:\S+/))![1]!;
  await type('alice', `/approve ${code}`);
  await waitFor('alice', 'Approved device laptop.');
  await waitFor('alice-laptop', 'Signed in as alice/laptop.');
  await type('alice-laptop', '/devices');
  await waitFor('alice-laptop', /laptop {2}\(this device\)/);
  await waitFor('alice-laptop', /^ {2}phone$/m);
  // bob's next message reaches both of alice's devices.
  await type('bob', 'Both your devices get this');
  for (const s of ['alice', 'alice-laptop']) await waitFor(s, /bob: Both your devices get this \(received\)/);

  // Restart bob from his data directory alone: same identity, history kept, and what
  // was sent while he was away arrives.
  await type('bob', '/quit');
  await waitForExit('bob');
  await tmux('kill-session', '-t', 'bob');
  await type('alice', '/to bob');
  await type('alice', 'Sent while you were away');
  await waitFor('alice', /me: Sent while you were away \(sent\)/);
  await launch('bob', ['--data', join(dir, 'bob'), '--transport', 'http', '--relay', relay.url]);
  await waitFor('bob', 'Signed in as bob/laptop.');
  await waitFor('bob', /alice: Sent while you were away \(received\)/);
  await type('bob', '/to alice');
  await type('bob', '/history 3');
  await waitFor('bob', /me: Both your devices get this \(sent\)\n.*alice: Sent while you were away \(received\)/);
}, 240_000);
