import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  ProfileInputSchema,
  ProfileSchema,
  ProfileUpdateSchema,
  err,
  ok,
  parse,
  type Profile,
  type ProfileInput,
  type ProfileSummary,
  type ProfileUpdate,
  type Result,
} from '../../shared/protocol';

const profilesMax = 64;
const ProfilesFileSchema = z.object({
  version: z.literal(1),
  profiles: z.array(ProfileSchema).max(profilesMax),
});

export function summarize(profile: Profile): ProfileSummary {
  const { token, ...rest } = profile;
  return { ...rest, hasToken: token.length > 0 };
}

/**
 * Cluster profiles (name, agent endpoints, token) in the user's config
 * directory. The file holds tokens, so it is written with mode 0600, and
 * atomically (temp file, fsync, rename) so a crash never leaves half a file.
 */
export class ProfileStore {
  private profiles: Profile[] = [];

  private constructor(private readonly filePath: string) {}

  static async open(configDir: string): Promise<Result<ProfileStore>> {
    const store = new ProfileStore(path.join(configDir, 'profiles.json'));
    await mkdir(configDir, { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = await readFile(store.filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ok(store);
      return err('profiles_unreadable', `cannot read ${store.filePath}: ${(error as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return err('profiles_corrupt', `${store.filePath} is not valid JSON; fix or remove it`);
    }
    const parsed = parse(ProfilesFileSchema, json, 'profiles');
    if (!parsed.ok) return err('profiles_corrupt', `${store.filePath}: ${parsed.error.message}`);
    store.profiles = parsed.data.profiles;
    return ok(store);
  }

  list(): readonly Profile[] {
    return this.profiles;
  }

  get(id: string): Profile | undefined {
    return this.profiles.find((profile) => profile.id === id);
  }

  async add(input: ProfileInput, id: string = randomUUID()): Promise<Result<Profile>> {
    const parsed = parse(ProfileInputSchema, input, 'profile');
    if (!parsed.ok) return parsed;
    if (this.profiles.length >= profilesMax) return err('too_many_profiles', `at most ${profilesMax} profiles`);
    if (this.profiles.some((profile) => profile.name === parsed.data.name)) {
      return err('duplicate_name', `a profile named "${parsed.data.name}" exists already`);
    }
    const profile: Profile = { ...parsed.data, id };
    this.profiles = [...this.profiles, profile];
    await this.save();
    return ok(profile);
  }

  /** Applies an edit; the token stays unless a new one is given. The name stays unique. */
  async update(change: ProfileUpdate): Promise<Result<Profile>> {
    const parsed = parse(ProfileUpdateSchema, change, 'profile');
    if (!parsed.ok) return parsed;
    const current = this.get(parsed.data.id);
    if (current === undefined) return err('unknown_profile', `no profile with id "${parsed.data.id}"`);
    const { id, ...fields } = parsed.data;
    const next: Profile = {
      ...current,
      ...Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)),
    };
    if (this.profiles.some((profile) => profile.id !== id && profile.name === next.name)) {
      return err('duplicate_name', `a profile named "${next.name}" exists already`);
    }
    this.profiles = this.profiles.map((profile) => (profile.id === id ? next : profile));
    await this.save();
    return ok(next);
  }

  async remove(id: string): Promise<boolean> {
    const before = this.profiles.length;
    this.profiles = this.profiles.filter((profile) => profile.id !== id);
    if (this.profiles.length === before) return false;
    await this.save();
    return true;
  }

  private async save(): Promise<void> {
    const temporary = `${this.filePath}.${process.pid}.tmp`;
    const body = JSON.stringify({ version: 1, profiles: this.profiles }, null, 2);
    await writeFile(temporary, body, { mode: 0o600 });
    const handle = await open(temporary, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.filePath);
  }
}
