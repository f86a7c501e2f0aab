// Starting `huddle bot` from the browser tests and the bot benchmark: its
// JSON lines are collected, and every bot still running is killed when the
// test process exits (or by killBots() in an after hook), so a failed test
// never leaves one behind.

import { spawn } from 'node:child_process';
import { HUDDLE_BIN } from './helpers.mjs';

/** Bots started and not yet exited: killed whatever happens to the tests. */
const bots = new Set();
process.on('exit', () => {
  for (const b of bots) b.kill('SIGKILL');
});

/**
 * Starts `huddle bot … --json` and collects its JSON lines.
 * @param {string[]} args
 * @param {{bin?: string}} [opts] bin: another huddle binary (default HUDDLE_BIN)
 */
export function startBot(args, opts = {}) {
  const proc = spawn(opts.bin || HUDDLE_BIN, ['bot', '--bind', '127.0.0.1', '--json', '--report-every', '1s', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  bots.add(proc);
  /** @type {any[]} */
  const lines = [];
  let stderr = '';
  let partial = '';
  proc.stdout.on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() || '';
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p));
      } catch {
        lines.push({ type: 'text', text: p });
      }
    }
  });
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  /** @type {Promise<number|null>} */
  const exited = new Promise((r) => proc.once('exit', (code) => {
    bots.delete(proc);
    r(code);
  }));
  return {
    lines,
    exited,
    stderr: () => stderr,
    /** The latest report about PEER, if any. */
    report(/** @type {string} */ peer) {
      return [...lines].reverse().find((l) => l.type === 'report' && l.peer === peer);
    },
    /** SIGINT (Ctrl-C), then the exit code; SIGKILL after 10 s. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGINT');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill() {
      proc.kill('SIGKILL');
    },
  };
}

/** Kills every bot still running. */
export function killBots() {
  for (const b of bots) b.kill('SIGKILL');
}
