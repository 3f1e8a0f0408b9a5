/**
 * The environment of a bench process and every child it starts: DynamoDB Local behind dummy
 * credentials, never a real account's (no session token, no profile), no SDK notice.
 */
export const LOCAL_AWS_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/** Puts `LOCAL_AWS_ENV` into this process's environment, and takes out what could reach a real account. */
export function useLocalAwsEnv(): void {
  Object.assign(process.env, LOCAL_AWS_ENV);
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}
