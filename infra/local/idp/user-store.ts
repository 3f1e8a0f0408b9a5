/**
 * Users of the local identity provider, in memory. Plays the part of Auth0's database
 * connection plus the user's `app_metadata` (tenant and roles). Passwords are kept as scrypt
 * hashes only so that nothing in memory dumps reads as a usable password; the cost is low
 * because these are local fixtures, not real credentials.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { LocalIdpError } from './errors.js';

export interface LocalUser {
  /** Auth0-shaped: `auth0|<24 hex>`; the `sub` of the user's tokens. */
  userId: string;
  email: string;
  name: string;
  /** Absent for platform operators, who belong to no tenant. */
  tenantId?: string;
  roles: string[];
  blocked: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface NewUser {
  email: string;
  password: string;
  tenantId?: string;
  roles?: string[];
  name?: string;
}

export interface UserPatch {
  name?: string;
  roles?: string[];
  blocked?: boolean;
  password?: string;
}

export interface UserQuery {
  tenantId?: string;
  email?: string;
  /** 0-based, as in Auth0's Management API. */
  page?: number;
  perPage?: number;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const SCRYPT = { N: 1024, r: 8, p: 1 } as const;

interface Stored {
  user: LocalUser;
  salt: Buffer;
  hash: Buffer;
}

function hashPassword(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32, SCRYPT);
}

function invalid(message: string): LocalIdpError {
  return new LocalIdpError('invalid_input', message);
}

function checkRoles(roles: unknown): string[] {
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && r.length > 0)) throw invalid('roles must be an array of non-empty strings');
  return [...new Set(roles as string[])];
}

export class UserStore {
  readonly #byId = new Map<string, Stored>();

  add(input: NewUser): LocalUser {
    const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
    if (!EMAIL.test(email)) throw invalid('email must be an email address');
    if (typeof input.password !== 'string' || input.password.length === 0) throw invalid('password is required');
    if (input.tenantId !== undefined && (typeof input.tenantId !== 'string' || input.tenantId.length === 0)) throw invalid('tenantId must be a non-empty string');
    if (input.name !== undefined && typeof input.name !== 'string') throw invalid('name must be a string');
    if (this.findByEmail(email)) throw new LocalIdpError('user_exists', 'The user already exists.');
    const now = new Date().toISOString();
    const user: LocalUser = {
      userId: `auth0|${randomBytes(12).toString('hex')}`,
      email,
      name: input.name ?? email,
      ...(input.tenantId !== undefined ? { tenantId: input.tenantId } : {}),
      roles: checkRoles(input.roles ?? []),
      blocked: false,
      createdAt: now,
      updatedAt: now,
    };
    const salt = randomBytes(16);
    this.#byId.set(user.userId, { user, salt, hash: hashPassword(input.password, salt) });
    return structuredClone(user);
  }

  get(userId: string): LocalUser | undefined {
    const s = this.#byId.get(userId);
    return s ? structuredClone(s.user) : undefined;
  }

  findByEmail(email: string): LocalUser | undefined {
    const wanted = email.trim().toLowerCase();
    for (const s of this.#byId.values()) if (s.user.email === wanted) return structuredClone(s.user);
    return undefined;
  }

  list(q: UserQuery = {}): { users: LocalUser[]; total: number } {
    const email = q.email?.trim().toLowerCase();
    const all = [...this.#byId.values()]
      .map((s) => s.user)
      .filter((u) => (q.tenantId === undefined || u.tenantId === q.tenantId) && (email === undefined || u.email === email))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.userId.localeCompare(b.userId));
    const perPage = Math.min(Math.max(q.perPage ?? 50, 1), 100);
    const page = Math.max(q.page ?? 0, 0);
    return { users: all.slice(page * perPage, (page + 1) * perPage).map((u) => structuredClone(u)), total: all.length };
  }

  update(userId: string, patch: UserPatch): LocalUser {
    const s = this.#byId.get(userId);
    if (!s) throw new LocalIdpError('user_not_found', 'The user does not exist.');
    if (patch.name !== undefined && typeof patch.name !== 'string') throw invalid('name must be a string');
    if (patch.blocked !== undefined && typeof patch.blocked !== 'boolean') throw invalid('blocked must be a boolean');
    if (patch.password !== undefined && (typeof patch.password !== 'string' || patch.password.length === 0)) throw invalid('password must be a non-empty string');
    const roles = patch.roles !== undefined ? checkRoles(patch.roles) : undefined;
    if (patch.name !== undefined) s.user.name = patch.name;
    if (roles !== undefined) s.user.roles = roles;
    if (patch.blocked !== undefined) s.user.blocked = patch.blocked;
    if (patch.password !== undefined) {
      s.salt = randomBytes(16);
      s.hash = hashPassword(patch.password, s.salt);
    }
    s.user.updatedAt = new Date().toISOString();
    return structuredClone(s.user);
  }

  delete(userId: string): boolean {
    return this.#byId.delete(userId);
  }

  /** The user whose email and password these are, blocked or not; undefined otherwise. */
  authenticate(email: string, password: string): LocalUser | undefined {
    const wanted = email.trim().toLowerCase();
    for (const s of this.#byId.values()) {
      if (s.user.email !== wanted) continue;
      return timingSafeEqual(hashPassword(password, s.salt), s.hash) ? structuredClone(s.user) : undefined;
    }
    return undefined;
  }
}
