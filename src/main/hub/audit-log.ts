import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { AuditEntry } from '../../shared/protocol';

/**
 * The operator audit log: one JSON line per action, appended to a file in the
 * config directory so it outlives the app. (The recorder will also keep it in
 * its database; this file is the plain record an auditor can read.)
 */
export class AuditLog {
  private readonly file: string;
  private pending: Promise<void> = Promise.resolve();

  constructor(configDir: string) {
    this.file = path.join(configDir, 'audit.jsonl');
  }

  append(entry: AuditEntry): Promise<void> {
    const line = `${JSON.stringify(entry)}\n`;
    this.pending = this.pending
      .then(() => mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 }))
      .then(() => appendFile(this.file, line, { mode: 0o600 }));
    return this.pending;
  }
}
