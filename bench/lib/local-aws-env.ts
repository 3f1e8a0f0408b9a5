/**
 * The environment of a bench process and every child it starts: DynamoDB Local behind dummy
 * credentials, never a real account's (no session token, no profile), no SDK notice.
 */
export function useLocalAwsEnv(): void {
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}
