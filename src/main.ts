#!/usr/bin/env node
// The only place that reads argv/env and calls process.exit.
import { runCli } from './cli/index.js';
import { agentCommand } from './agent/command.js';
import { labCommand } from './cli/lab-command.js';

const io = { out: (t: string) => void process.stdout.write(t), err: (t: string) => void process.stderr.write(t) };
const code = await runCli(process.argv.slice(2), io, process.env, {
  agent: (args) => agentCommand(args),
  lab: (args, io2, env) => labCommand(args, io2, env),
});
process.exitCode = code;
// Let stdout drain, then leave even if a library (gRPC channels, watch streams) keeps a handle open:
// the command, including an agent's ordered stop, is complete here.
setTimeout(() => process.exit(code), 50).unref();
