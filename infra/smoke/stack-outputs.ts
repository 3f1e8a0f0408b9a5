/**
 * A deployed Latchkey stack's outputs, read with CloudFormation `DescribeStacks`. The SDK client
 * is imported only when a stack is named, so runs given `--api-url` need no AWS credentials.
 */
export interface StackOutputs {
  apiUrl: string;
  issuer: string | undefined;
  audience: string | undefined;
  revocationCheckS: number | undefined;
  allowedOrigins: string[];
}

/** Maps `OutputKey → OutputValue` to what the smoke check needs; throws when the stack has no `ApiUrl`. */
export function toStackOutputs(stackName: string, outputs: readonly { OutputKey?: string; OutputValue?: string }[]): StackOutputs {
  const get = (k: string) => outputs.find((o) => o.OutputKey === k)?.OutputValue || undefined;
  const apiUrl = get('ApiUrl');
  if (!apiUrl) throw new Error(`stack ${stackName} has no ApiUrl output: is it a Latchkey stack?`);
  const seconds = get('RevocationCheckSeconds');
  return {
    apiUrl,
    issuer: get('Issuer'),
    audience: get('Audience'),
    revocationCheckS: seconds !== undefined && /^\d+$/.test(seconds) ? Number(seconds) : undefined,
    allowedOrigins: (get('AllowedOrigins') ?? '').split(',').filter(Boolean),
  };
}

export async function readStackOutputs(stackName: string, region: string | undefined): Promise<StackOutputs> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient(region ? { region } : {});
  try {
    const res = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = res.Stacks?.[0];
    if (!stack) throw new Error(`stack ${stackName} not found`);
    return toStackOutputs(stackName, stack.Outputs ?? []);
  } finally {
    cfn.destroy();
  }
}
