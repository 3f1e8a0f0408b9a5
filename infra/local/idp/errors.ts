/** Typed errors of the local identity provider; `code` is stable, messages are for humans. */
export type LocalIdpErrorCode =
  | 'invalid_input'
  | 'user_exists'
  | 'user_not_found'
  | 'user_blocked'
  | 'client_not_found'
  | 'unknown_scope'
  | 'registration_failed'
  | 'not_running';

export class LocalIdpError extends Error {
  override name = 'LocalIdpError';
  constructor(
    readonly code: LocalIdpErrorCode,
    message: string,
  ) {
    super(message);
  }
}
