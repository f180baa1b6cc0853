// The volume ledger in etcd: what the cluster knows of each volume (created when and by whom, formatted or not).
import { keys } from '../state/keys.js';
import type { StateClient } from '../state/client.js';
import type { VolumeRecord } from '../state/schema.js';
import type { VolumeLedger } from './types.js';

export class EtcdVolumeLedger implements VolumeLedger {
  constructor(private readonly state: StateClient) {}

  get(name: string): Promise<VolumeRecord | undefined> {
    return this.state.getValue(keys.volume(name));
  }

  put(record: VolumeRecord): Promise<void> {
    return this.state.put(keys.volume(record.name), record);
  }
}
