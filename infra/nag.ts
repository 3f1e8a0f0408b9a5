/** cdk-nag suppressions shared by Latchkey's stacks. Each one says why it is right here. */
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NagSuppressions } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * AwsSolutions-L1 on every Node.js 22 function under `scope`: the runtime is pinned on purpose.
 */
export function suppressLatchkeyRuntime(scope: IConstruct): void {
  for (const node of scope.node.findAll()) {
    if (node instanceof lambda.Function && node.runtime.name === lambda.Runtime.NODEJS_22_X.name) {
      NagSuppressions.addResourceSuppressions(node, [
        {
          id: 'AwsSolutions-L1',
          reason:
            'Latchkey pins Node.js 22: the bundles target node22 and the test suite and benchmarks run on that major; moving to a newer runtime is a deliberate, tested upgrade rather than a silent one.',
        },
      ]);
    }
  }
}
