#!/usr/bin/env node
// The only place that reads argv/env and calls process.exit.
import { runCli } from './cli/index.js';
import { agentCommand } from './agent/command.js';
import { labCommand } from './cli/lab-command.js';
import { watchdogCommand } from './watchdog/watchdog.js';

const io = { out: (t: string) => void process.stdout.write(t), err: (t: string) => void process.stderr.write(t) };
// undici leaves an in-flight fetch's socket unreferenced, so a command waiting only on fetch (lab up
// polling its API) could see the event loop empty and exit with code 13. Hold the loop open until done.
const holdOpen = setInterval(() => undefined, 1 << 30);
const code = await runCli(process.argv.slice(2), io, process.env, {
  agent: (args) => agentCommand(args),
  lab: (args, io2, env) => labCommand(args, io2, env),
  watchdog: (args) => watchdogCommand(args),
});
clearInterval(holdOpen);
process.exitCode = code;
// Let stdout drain, then leave even if a library (gRPC channels, watch streams) keeps a handle open:
// the command, including an agent's ordered stop, is complete here.
setTimeout(() => process.exit(code), 50).unref();
