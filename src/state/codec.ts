import { YcError } from '../lib/errors.js';
import type { KeyDef, PrefixDef } from './keys.js';

/** Parses and validates a stored value; a bad one is an error that names its key. */
export function decodeValue<T>(def: KeyDef<T> | PrefixDef<T>, key: string, raw: string): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new YcError('CORRUPT_VALUE', `value at ${key} is not JSON`, { retryable: false, detail: { key } });
  }
  const parsed = def.schema.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
    throw new YcError('CORRUPT_VALUE', `value at ${key} fails its schema: ${why}`, { retryable: false, detail: { key } });
  }
  return parsed.data;
}

/** Validates a value before it is written: nothing that would fail on read is ever stored. */
export function encodeValue<T>(def: KeyDef<T>, value: T): string {
  const parsed = def.schema.safeParse(value);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
    throw new YcError('BAD_INPUT', `refusing to write ${def.key}: ${why}`, { detail: { key: def.key } });
  }
  return JSON.stringify(parsed.data);
}
