// The JITR deployment as a CDK stack: the same resources and guarantees as
// infra/sam/template.yaml (tests/tests/infra.rs checks both).
//
// Topic rule -> SQS queue -> function (capped concurrency, partial batch
// failures), dead-letter queue after 10 receives and for the rule's errors,
// an alarm on the DLQ, least-privilege IAM with inline policies only, the
// device policy, the function's log group, and the claims table its
// instances share.
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import { Construct } from 'constructs';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';

/** An ARN in this account and region: `iotArn('cert/*')`. */
function iotArn(resource: string): string {
  return cdk.Fn.sub(`arn:\${AWS::Partition}:iot:\${AWS::Region}:\${AWS::AccountId}:${resource}`);
}

export class JitrStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);

    // The function's configuration (JITR_* variables), as in the SAM template.
    const caId = new cdk.CfnParameter(this, 'CaCertificateId', {
      type: 'String',
      description:
        'caCertificateId printed by `jitr ca register` (64 hex digits), or "all" for every CA of the account.',
      allowedPattern: '^([0-9a-f]{64}|all)$',
    });
    const thingNameSource = new cdk.CfnParameter(this, 'ThingNameSource', {
      type: 'String',
      default: 'common-name',
      allowedValues: ['common-name', 'serial-number', 'certificate-id'],
    });
    const thingNamePattern = new cdk.CfnParameter(this, 'ThingNamePattern', {
      type: 'String',
      default: '^[a-zA-Z0-9:_-]{1,128}$',
    });
    const allowedCaIds = new cdk.CfnParameter(this, 'AllowedCaIds', {
      type: 'String',
      default: '',
      description: 'Comma-separated CA certificate ids whose devices are admitted; empty = any.',
    });
    const thingType = new cdk.CfnParameter(this, 'ThingType', { type: 'String', default: '' });
    const thingGroups = new cdk.CfnParameter(this, 'ThingGroups', { type: 'String', default: '' });
    const onReject = new cdk.CfnParameter(this, 'OnReject', {
      type: 'String',
      default: 'revoke',
      allowedValues: ['revoke', 'ignore'],
    });
    const onRotation = new cdk.CfnParameter(this, 'OnRotation', {
      type: 'String',
      default: 'keep',
      allowedValues: ['keep', 'retire-previous'],
      description:
        'A new certificate for a thing with ACTIVE certificates of the same CA either joins them (keep) or, once ACTIVE, sets the older ones INACTIVE (retire-previous).',
    });
    const exclusiveThing = new cdk.CfnParameter(this, 'ExclusiveThing', {
      type: 'String',
      default: 'false',
      allowedValues: ['true', 'false'],
      description:
        "Attach certificates as the thing's exclusive principal (EXCLUSIVE_THING), so a certificate can never serve two things.",
    });
    const maxConcurrency = new cdk.CfnParameter(this, 'MaxConcurrency', {
      type: 'Number',
      default: '2',
      minValue: 2,
      maxValue: 20,
      // Whole numbers only: each is a key of BatchSizeByConcurrency.
      allowedValues: Array.from({ length: 19 }, (_, i) => String(i + 2)),
      description:
        "Concurrent function instances; each keeps to 1/MaxConcurrency of the account's IoT API quotas (DescribeCertificate and UpdateCertificate allow 10/s per account).",
    });
    const apiRates = new cdk.CfnParameter(this, 'ApiRates', {
      type: 'String',
      default: '',
      description:
        'The account\'s IoT API quotas where raised above AWS\'s defaults, e.g. "DescribeCertificate=50,UpdateCertificate=50"; empty = AWS\'s defaults.',
    });
    const clockSkewSeconds = new cdk.CfnParameter(this, 'ClockSkewSeconds', {
      type: 'Number',
      default: 300,
      minValue: 0,
      maxValue: 86400,
      description:
        "How far a certificate's notBefore may be ahead of the function's clock (a factory clock running fast), seconds.",
    });
    const ruleName = new cdk.CfnParameter(this, 'RuleName', {
      type: 'String',
      default: 'jitr_certificate_registered',
      allowedPattern: '^[a-zA-Z0-9_]{1,128}$',
      description: 'Name of the topic rule (unique per account and region).',
    });
    const logRetentionDays = new cdk.CfnParameter(this, 'LogRetentionDays', {
      type: 'Number',
      default: '30',
      allowedValues: ['1', '3', '5', '7', '14', '30', '60', '90', '180', '365'],
    });
    const alarmTopicArn = new cdk.CfnParameter(this, 'AlarmTopicArn', {
      type: 'String',
      default: '',
      description: 'Optional SNS topic notified when events reach the dead-letter queue.',
    });
    const architecture = new cdk.CfnParameter(this, 'Architecture', {
      type: 'String',
      default: 'arm64',
      allowedValues: ['arm64', 'x86_64'],
      description: 'The instruction set the function zip was built for (cargo lambda build --arm64 or --x86-64).',
    });

    // Records per batch by MaxConcurrency, as in the SAM template: 2000 /
    // MaxConcurrency, so a batch of new certificates is 200 s of an
    // instance's share of DescribeCertificate's 10/s at any concurrency.
    const batchSizes: Record<string, Record<string, number>> = {};
    for (let n = 2; n <= 20; n++) {
      batchSizes[String(n)] = { BatchSize: Math.floor(2000 / n) };
    }
    const batchSizeByConcurrency = new cdk.CfnMapping(this, 'BatchSizeByConcurrency', {
      mapping: batchSizes,
    });

    const allCas = new cdk.CfnCondition(this, 'AllCas', {
      expression: cdk.Fn.conditionEquals(caId.valueAsString, 'all'),
    });
    const hasAlarmTopic = new cdk.CfnCondition(this, 'HasAlarmTopic', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(alarmTopicArn.valueAsString, '')),
    });

    // Devices connect only as their own thing and use only their own topics and shadow.
    const thing = '${!iot:Connection.Thing.ThingName}';
    const devicePolicy = new iot.CfnPolicy(this, 'DevicePolicy', {
      policyName: cdk.Fn.sub('${AWS::StackName}-device'),
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: iotArn(`client/${thing}`),
            Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
          },
          {
            Effect: 'Allow',
            Action: ['iot:Publish', 'iot:Receive'],
            Resource: [iotArn(`topic/things/${thing}/*`), iotArn(`topic/$aws/things/${thing}/shadow/*`)],
          },
          {
            Effect: 'Allow',
            Action: 'iot:Subscribe',
            Resource: [
              iotArn(`topicfilter/things/${thing}/*`),
              iotArn(`topicfilter/$aws/things/${thing}/shadow/*`),
            ],
          },
        ],
      },
    });
    // Kept when the stack is deleted: the function attached it to every device
    // certificate it activated, and AWS refuses to delete an attached policy.
    devicePolicy.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);

    const deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      retentionPeriod: cdk.Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
    });
    // Chosen together from the quotas, as in the SAM template: a batch of
    // new certificates at an instance's share (BatchSizeByConcurrency) takes
    // about 200 s, inside the 450 s timeout; visibility six times the
    // timeout; ten deliveries before the dead-letter queue.
    const eventQueue = new sqs.Queue(this, 'EventQueue', {
      visibilityTimeout: cdk.Duration.seconds(2700),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 10 },
    });

    // Claims shared by the function's instances, as in the SAM template: a
    // duplicate event costs no IoT call. Items expire by themselves.
    const claimsTable = new dynamodb.CfnTable(this, 'ClaimsTable', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [{ attributeName: 'certificateId', attributeType: 'S' }],
      keySchema: [{ attributeName: 'certificateId', keyType: 'HASH' }],
      timeToLiveSpecification: { attributeName: 'expiresAt', enabled: true },
    });

    // The role the topic rule assumes to enqueue events; only this rule may assume it.
    const ruleRole = new iam.Role(this, 'RuleRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': cdk.Aws.ACCOUNT_ID },
        ArnEquals: { 'aws:SourceArn': iotArn('rule/${RuleName}') },
      }),
      inlinePolicies: {
        'enqueue-registration-events': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['sqs:SendMessage'],
              resources: [eventQueue.queueArn, deadLetterQueue.queueArn],
            }),
          ],
        }),
      },
    });

    const rule = new iot.CfnTopicRule(this, 'RegisteredRule', {
      ruleName: ruleName.valueAsString,
      topicRulePayload: {
        description: 'Certificates auto-registered by JITR, to the provisioning queue.',
        awsIotSqlVersion: '2016-03-23',
        ruleDisabled: false,
        sql: cdk.Fn.conditionIf(
          allCas.logicalId,
          "SELECT * FROM '$aws/events/certificates/registered/+'",
          cdk.Fn.sub("SELECT * FROM '$aws/events/certificates/registered/${CaCertificateId}'"),
        ).toString(),
        actions: [
          { sqs: { queueUrl: eventQueue.queueUrl, roleArn: ruleRole.roleArn, useBase64: false } },
        ],
        errorAction: {
          sqs: { queueUrl: deadLetterQueue.queueUrl, roleArn: ruleRole.roleArn, useBase64: false },
        },
      },
    });

    const logGroup = new logs.CfnLogGroup(this, 'FunctionLogGroup', {
      logGroupName: cdk.Fn.sub('/aws/lambda/${AWS::StackName}-jitr'),
      retentionInDays: logRetentionDays.valueAsNumber,
    });

    // The function's role, with inline policies only: no managed policy (the
    // Lambda basic/SQS execution policies allow their actions on every resource).
    const functionRole = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      inlinePolicies: {
        'provision-devices': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'ReadAndActivateCertificates',
              actions: ['iot:DescribeCertificate', 'iot:UpdateCertificate'],
              resources: [iotArn('cert/*')],
            }),
            new iam.PolicyStatement({
              sid: 'ReadThingOwners',
              actions: ['iot:ListThingPrincipals'],
              resources: [iotArn('thing/*')],
            }),
            new iam.PolicyStatement({
              sid: 'CreateThings',
              actions: ['iot:CreateThing', 'iot:AddThingToThingGroup'],
              resources: [iotArn('thing/*'), iotArn('thinggroup/*'), iotArn('thingtype/*')],
            }),
            new iam.PolicyStatement({
              sid: 'AttachThePrincipal',
              actions: ['iot:AttachThingPrincipal'],
              resources: [iotArn('thing/*'), iotArn('cert/*')],
            }),
            new iam.PolicyStatement({
              sid: 'AttachTheDevicePolicyOnly',
              actions: ['iot:AttachPolicy'],
              resources: [iotArn(`policy/\${${devicePolicy.logicalId}}`), iotArn('cert/*')],
            }),
          ],
        }),
        'consume-registration-events': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: [
                'sqs:ReceiveMessage',
                'sqs:DeleteMessage',
                'sqs:GetQueueAttributes',
                'sqs:ChangeMessageVisibility',
              ],
              resources: [eventQueue.queueArn],
            }),
          ],
        }),
        'share-claims': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
              resources: [claimsTable.attrArn],
            }),
          ],
        }),
        'write-logs': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [logGroup.attrArn],
            }),
          ],
        }),
      },
    });

    const fn = new RustFunction(this, 'JitrFunction', {
      manifestPath: path.join(__dirname, '..', '..', '..', 'Cargo.toml'),
      binaryName: 'jitr-lambda',
      runtime: 'provided.al2023',
      architecture: lambda.Architecture.ARM_64,
      functionName: cdk.Fn.sub('${AWS::StackName}-jitr'),
      memorySize: 128,
      timeout: cdk.Duration.seconds(450),
      role: functionRole,
      logGroup: logs.LogGroup.fromLogGroupName(this, 'FunctionLogs', logGroup.ref),
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        JITR_POLICY_NAME: devicePolicy.ref,
        JITR_THING_NAME_SOURCE: thingNameSource.valueAsString,
        JITR_THING_NAME_PATTERN: thingNamePattern.valueAsString,
        JITR_ALLOWED_CA_IDS: allowedCaIds.valueAsString,
        JITR_THING_TYPE: thingType.valueAsString,
        JITR_THING_GROUPS: thingGroups.valueAsString,
        JITR_ON_REJECT: onReject.valueAsString,
        JITR_ON_ROTATION: onRotation.valueAsString,
        JITR_EXCLUSIVE_THING: exclusiveThing.valueAsString,
        JITR_CLOCK_SKEW_SECONDS: clockSkewSeconds.valueAsString,
        JITR_MAX_CONCURRENCY: maxConcurrency.valueAsString,
        JITR_API_RATES: apiRates.valueAsString,
        JITR_CLAIMS_TABLE: claimsTable.ref,
      },
    });

    // The role is already a dependency through Fn::GetAtt; an explicit
    // DependsOn as well is what cfn-lint's W3005 warns about.
    (fn.node.defaultChild as cdk.CfnResource).addDeletionOverride('DependsOn');
    // The instruction set is a parameter, as in the SAM template (arm64 by
    // default; the local rehearsal deploys a zip built for its own machine).
    (fn.node.defaultChild as cdk.CfnResource).addPropertyOverride('Architectures', [architecture.valueAsString]);

    // Not SqsEventSource: it would add a second, generated policy to the role.
    new lambda.EventSourceMapping(this, 'Registered', {
      target: fn,
      eventSourceArn: eventQueue.queueArn,
      batchSize: cdk.Token.asNumber(batchSizeByConcurrency.findInMap(maxConcurrency.valueAsString, 'BatchSize')),
      maxBatchingWindow: cdk.Duration.seconds(1),
      reportBatchItemFailures: true,
      maxConcurrency: maxConcurrency.valueAsNumber,
    });

    const alarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription:
        'Registration events reached the dead-letter queue; run `jitr reconcile` after fixing the cause.',
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: 'Maximum',
        period: cdk.Duration.minutes(1),
      }),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    (alarm.node.defaultChild as cloudwatch.CfnAlarm).addPropertyOverride(
      'AlarmActions',
      cdk.Fn.conditionIf(hasAlarmTopic.logicalId, [alarmTopicArn.valueAsString], cdk.Aws.NO_VALUE),
    );

    new cdk.CfnOutput(this, 'FunctionName', { value: fn.functionName });
    new cdk.CfnOutput(this, 'EventQueueUrl', { value: eventQueue.queueUrl });
    new cdk.CfnOutput(this, 'DeadLetterQueueUrl', { value: deadLetterQueue.queueUrl });
    new cdk.CfnOutput(this, 'DevicePolicyName', { value: devicePolicy.ref });
    new cdk.CfnOutput(this, 'TopicRuleName', { value: rule.ref });
    new cdk.CfnOutput(this, 'ClaimsTableName', { value: claimsTable.ref });
  }
}
