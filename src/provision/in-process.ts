import type { ServiceStatus } from '../lib/supervisor.js';

/** Status of a server that runs inside the agent process (DNS, TFTP, DHCP, boot HTTP). */
export function inProcess(name: string, running: boolean, since: string, lastError?: string): ServiceStatus {
  return { name, state: running ? 'running' : 'stopped', pid: process.pid, restarts: 0, healthy: running, lastError, since };
}
