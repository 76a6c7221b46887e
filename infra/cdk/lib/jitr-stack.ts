// The JITR deployment as a CDK stack: the same resources and guarantees as
// infra/sam/template.yaml (tests/tests/infra.rs checks both).
//
// Topic rule -> two SQS queues (bulk lane, fast lane) -> function (capped
// concurrency, partial batch failures), dead-letter queue after 10 receives
// and for the rule's errors,
// an alarm on the DLQ, least-privilege IAM with inline policies only, the
// device policy, the function's log group, and the claims table its
// instances share.
import * as fs from 'fs';
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

/** checkov checks skipped on a resource, each with why (as in the SAM template). */
function skipChecks(resource: cdk.CfnResource, why: Record<string, string>): void {
  resource.addMetadata('checkov', {
    skip: Object.entries(why).map(([id, comment]) => ({ id, comment })),
  });
}

/** The fast lane's MaximumConcurrency: the least an SQS mapping takes. */
const FAST_LANE_CONCURRENCY = 2;

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
    const thingNameTemplate = new cdk.CfnParameter(this, 'ThingNameTemplate', {
      type: 'String',
      default: '',
      allowedPattern: '^[a-zA-Z0-9:_{}-]{0,256}$',
      description:
        'Thing names from the subject, e.g. robot-{serialNumber} or {O}-{CN} (fields CN serialNumber O OU C L ST dnQualifier emailAddress certificateId); empty = ThingNameSource.',
    });
    // name=template pairs, as in the SAM template; checked at start-up.
    const thingAttributes = new cdk.CfnParameter(this, 'ThingAttributes', {
      type: 'String',
      default: '',
      allowedPattern: '^[a-zA-Z0-9_.@/:#=\\[\\]{},-]{0,4096}$',
      description:
        'Thing attributes from the certificate, e.g. model={O},serial={serialNumber},cert={certificateId} (fields as ThingNameTemplate; at most 3 without ThingType, 50 with); an allow-list entry\'s attributes win key by key; empty = serialNumber, O, OU, C, dnQualifier of the subject.',
    });
    const admission = new cdk.CfnParameter(this, 'Admission', {
      type: 'String',
      default: 'any',
      allowedValues: ['any', 'allow-list'],
      description:
        'allow-list admits only certificates put on the stack\'s allow-list (AllowListTableName) by `jitr device allow`; any admits every certificate that passes the other checks.',
    });
    // An unqualified Lambda function ARN, as in the SAM template: the role
    // may invoke exactly this ARN; the function checks it at start-up.
    const verifierFunction = new cdk.CfnParameter(this, 'VerifierFunction', {
      type: 'String',
      default: '',
      allowedPattern: '^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[a-zA-Z0-9_-]{1,64})?$',
      description:
        'A Lambda function (its ARN, without a version or alias) the function invokes synchronously about each certificate that passes its own checks, answering admit and reason and optionally thingName, attributes, thingGroups; empty = no hook.',
    });
    const allowedCaIds = new cdk.CfnParameter(this, 'AllowedCaIds', {
      type: 'String',
      default: '',
      description: 'Comma-separated CA certificate ids whose devices are admitted; empty = any.',
    });
    // AWS's ThingTypeName / ThingGroupName (botocore's IoT model), as in the SAM template.
    const thingType = new cdk.CfnParameter(this, 'ThingType', {
      type: 'String',
      default: '',
      allowedPattern: '^[a-zA-Z0-9:_-]{0,128}$',
      description: 'Thing type of every provisioned thing (it must exist); empty = none.',
    });
    const thingGroups = new cdk.CfnParameter(this, 'ThingGroups', {
      type: 'String',
      default: '',
      allowedPattern: '^([a-zA-Z0-9:_-]{1,128}(,[a-zA-Z0-9:_-]{1,128}){0,8})?$',
      description:
        'Comma-separated existing static thing groups every thing also joins (at most 9); the function may add things to these and to the device group, no other.',
    });
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
        "Concurrent function instances of the bulk lane (the fast lane adds 2); they share the account's IoT API quotas (DescribeCertificate and UpdateCertificate allow 10/s per account).",
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
    // PutEvents' bus name (botocore's events model, NonPartnerEventBusName),
    // as in the SAM template: a name, since the role's grant is built from it.
    const eventBusName = new cdk.CfnParameter(this, 'EventBusName', {
      type: 'String',
      default: '',
      allowedPattern: '^[.\\-_A-Za-z0-9]{0,256}$',
      description:
        'An existing EventBridge bus (its name, not its ARN) that gets one event per device provisioned or rejected and per certificate retired (source jitr); empty = no events.',
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
    // Instances of both lanes (MaxConcurrency + the fast lane's
    // FAST_LANE_CONCURRENCY), as in the SAM template: each instance's share
    // of the quotas when the claims table cannot count the working ones.
    // Strings: the value is an environment variable's.
    const instances: Record<string, Record<string, string>> = {};
    for (let n = 2; n <= 20; n++) {
      instances[String(n)] = { Instances: String(n + FAST_LANE_CONCURRENCY) };
    }
    const instancesByConcurrency = new cdk.CfnMapping(this, 'FunctionInstancesByConcurrency', {
      mapping: instances,
    });

    const allCas = new cdk.CfnCondition(this, 'AllCas', {
      expression: cdk.Fn.conditionEquals(caId.valueAsString, 'all'),
    });
    const hasAlarmTopic = new cdk.CfnCondition(this, 'HasAlarmTopic', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(alarmTopicArn.valueAsString, '')),
    });
    const hasThingGroups = new cdk.CfnCondition(this, 'HasThingGroups', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(thingGroups.valueAsString, '')),
    });
    const hasVerifier = new cdk.CfnCondition(this, 'HasVerifier', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(verifierFunction.valueAsString, '')),
    });
    const hasEventBus = new cdk.CfnCondition(this, 'HasEventBus', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(eventBusName.valueAsString, '')),
    });

    // Devices connect only as their own thing and use only their own topics and shadow.
    const thing = '${!iot:Connection.Thing.ThingName}';
    // Named by CloudFormation (any stack name fits), attached to the device
    // group only, as in the SAM template.
    const devicePolicy = new iot.CfnPolicy(this, 'DevicePolicy', {
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
    // Kept when the stack is deleted, with the group and the attachment:
    // devices keep working.
    devicePolicy.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);

    // Every thing joins this group, which carries the device policy: the
    // function needs no iot:AttachPolicy (authorised on the target only, so
    // a grant on certificates would let it attach any policy of the account).
    const deviceGroup = new iot.CfnThingGroup(this, 'DeviceGroup', {
      thingGroupProperties: {
        thingGroupDescription: 'Devices provisioned by jitr; the device policy is attached here.',
      },
    });
    deviceGroup.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);

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
    // The fast lane, as in the SAM template: the rule sends every event here
    // too; its mapping invokes at once for batches of up to 10 (no batching
    // window: with one, AWS may wait up to 20 s on a quiet queue). The claims
    // make the other lane's copy cost no IoT call. Same visibility and redrive.
    const fastLaneQueue = new sqs.Queue(this, 'FastLaneQueue', {
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
    skipChecks(claimsTable, {
      CKV_AWS_28: 'Claims live ten minutes and expire by TTL; there is nothing to restore (a lost claim costs one duplicate IoT call).',
      CKV_AWS_119: "Encrypted at rest with DynamoDB's default key; items hold certificate ids and expiry times only.",
    });
    // The allow-list (Admission=allow-list), as in the SAM template: one
    // GetItem per new certificate; created under either Admission.
    const allowListTable = new dynamodb.CfnTable(this, 'AllowListTable', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [{ attributeName: 'certificateId', attributeType: 'S' }],
      keySchema: [{ attributeName: 'certificateId', keyType: 'HASH' }],
    });
    skipChecks(allowListTable, {
      CKV_AWS_28: 'The list is rebuilt from the manifests by `jitr device allow` (idempotent); point-in-time recovery would only add cost.',
      CKV_AWS_119: "Encrypted at rest with DynamoDB's default key; items hold certificate ids and thing names only.",
    });
    skipChecks(eventQueue.node.defaultChild as cdk.CfnResource, {
      CKV_AWS_27:
        "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); a customer KMS key would add a key policy for the rule's role and the function to keep right, for certificate ids.",
    });
    skipChecks(fastLaneQueue.node.defaultChild as cdk.CfnResource, {
      CKV_AWS_27: 'Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), as the event queue.',
    });
    skipChecks(deadLetterQueue.node.defaultChild as cdk.CfnResource, {
      CKV_AWS_27: 'Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), as the event queue.',
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
              resources: [eventQueue.queueArn, fastLaneQueue.queueArn, deadLetterQueue.queueArn],
            }),
          ],
        }),
      },
    });

    const rule = new iot.CfnTopicRule(this, 'RegisteredRule', {
      ruleName: ruleName.valueAsString,
      topicRulePayload: {
        description: 'Certificates auto-registered by JITR, to the provisioning queues (bulk lane, fast lane).',
        awsIotSqlVersion: '2016-03-23',
        ruleDisabled: false,
        sql: cdk.Fn.conditionIf(
          allCas.logicalId,
          "SELECT * FROM '$aws/events/certificates/registered/+'",
          cdk.Fn.sub("SELECT * FROM '$aws/events/certificates/registered/${CaCertificateId}'"),
        ).toString(),
        // Each action gets every event: the bulk lane first (doctor reads the
        // deployment's queue from the rule's first action), the fast lane.
        actions: [
          { sqs: { queueUrl: eventQueue.queueUrl, roleArn: ruleRole.roleArn, useBase64: false } },
          { sqs: { queueUrl: fastLaneQueue.queueUrl, roleArn: ruleRole.roleArn, useBase64: false } },
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
    skipChecks(logGroup, {
      CKV_AWS_158: 'Encrypted by CloudWatch Logs by default; lines hold certificate ids, thing names and outcomes, no secrets.',
    });

    // The device policy attached to the device group, by a custom resource:
    // CloudFormation has none (PolicyPrincipalAttachment refuses a group ARN).
    // Its role may attach and detach policies on the device group only.
    const attacherRole = new iam.Role(this, 'DeviceGroupPolicyRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      inlinePolicies: {
        'attach-to-the-device-group': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['iot:AttachPolicy', 'iot:DetachPolicy'],
              resources: [deviceGroup.attrArn],
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
    const attacher = new lambda.CfnFunction(this, 'DeviceGroupPolicyFunction', {
      runtime: 'python3.12',
      handler: 'index.handler',
      memorySize: 128,
      timeout: 60,
      role: attacherRole.roleArn,
      loggingConfig: { logFormat: 'JSON', logGroup: logGroup.ref },
      code: {
        zipFile: fs.readFileSync(path.join(__dirname, '..', '..', 'shared', 'device_group_policy.py'), 'utf8'),
      },
    });
    skipChecks(attacher, {
      CKV_AWS_115: 'Runs once per deployment, invoked by CloudFormation only; no concurrency to cap.',
      CKV_AWS_116: 'Invoked synchronously by CloudFormation, which reports a failure itself; a DLQ would receive nothing.',
      CKV_AWS_117: 'Calls only the public AWS IoT API; no VPC resource to reach.',
      CKV_AWS_173: 'No environment variables.',
    });
    const attachment = new cdk.CfnResource(this, 'DevicePolicyAttachment', {
      type: 'Custom::ThingGroupPolicyAttachment',
      properties: {
        ServiceToken: attacher.attrArn,
        PolicyName: devicePolicy.ref,
        ThingGroupArn: deviceGroup.attrArn,
      },
    });
    attachment.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);

    // The thing groups of the ThingGroups parameter, as ARNs: nine slots (the
    // parameter's maximum), the ones it leaves empty filled with the device group.
    const padding = cdk.Fn.join(',', Array(9).fill(deviceGroup.ref));
    const groupNames = cdk.Fn.split(
      ',',
      cdk.Fn.conditionIf(
        hasThingGroups.logicalId,
        cdk.Fn.join(',', [thingGroups.valueAsString, padding]),
        padding,
      ).toString(),
    );
    const configuredGroupArns = Array.from({ length: 9 }, (_, i) =>
      cdk.Fn.sub('arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:thinggroup/${Name}', {
        Name: cdk.Fn.select(i, groupNames),
      }),
    );

    // The function's role, with inline policies only: no managed policy (the
    // Lambda basic/SQS execution policies allow their actions on every resource).
    // No iot:AttachPolicy; each IoT action on the resource types AWS
    // authorises it against (tests/tests/iam.rs checks).
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
              actions: ['iot:CreateThing'],
              resources: [iotArn('thing/*')],
            }),
            new iam.PolicyStatement({
              sid: 'AttachCertificatesToThings',
              actions: ['iot:AttachThingPrincipal'],
              resources: [iotArn('cert/*')],
            }),
            // Authorised on the thing and on the group: any thing, into the
            // device group or a ThingGroups group only (padded with the device
            // group to the parameter's 9 slots).
            new iam.PolicyStatement({
              sid: 'JoinTheDeviceGroupAndTheConfiguredGroups',
              actions: ['iot:AddThingToThingGroup'],
              resources: [iotArn('thing/*'), deviceGroup.attrArn, ...configuredGroupArns],
            }),
          ],
        }),
        'consume-registration-events': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
              resources: [eventQueue.queueArn, fastLaneQueue.queueArn],
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
        'read-allow-list': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['dynamodb:GetItem'],
              resources: [allowListTable.attrArn],
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

    // Events downstream (EventBusName): PutEvents on that bus only, an
    // inline policy present only when the parameter is set (as in the SAM
    // template; the role's inline policies are a plain list until synth).
    const cfnFunctionRole = functionRole.node.defaultChild as iam.CfnRole;
    cfnFunctionRole.policies = [
      ...((cfnFunctionRole.policies ?? []) as Array<iam.CfnRole.PolicyProperty | cdk.IResolvable>),
      cdk.Fn.conditionIf(
        hasEventBus.logicalId,
        {
          PolicyName: 'send-events',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: 'events:PutEvents',
                Resource: cdk.Fn.sub(
                  'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}',
                ),
              },
            ],
          },
        },
        cdk.Aws.NO_VALUE,
      ),
    ];

    // The verifier hook (VerifierFunction), as in the SAM template: the
    // function's role may invoke that function only, and only when there is
    // one; an inline policy of its own, created only under HasVerifier.
    const verifierPolicy = new iam.CfnPolicy(this, 'VerifierInvokePolicy', {
      policyName: 'invoke-verifier',
      roles: [functionRole.roleName],
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'lambda:InvokeFunction',
            Resource: verifierFunction.valueAsString,
          },
        ],
      },
    });
    verifierPolicy.cfnOptions.condition = hasVerifier;

    const fn = new RustFunction(this, 'JitrFunction', {
      manifestPath: path.join(__dirname, '..', '..', '..', 'Cargo.toml'),
      binaryName: 'jitr-lambda',
      runtime: 'provided.al2023',
      architecture: lambda.Architecture.ARM_64,
      memorySize: 128,
      timeout: cdk.Duration.seconds(450),
      role: functionRole,
      logGroup: logs.LogGroup.fromLogGroupName(this, 'FunctionLogs', logGroup.ref),
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        JITR_POLICY_NAME: devicePolicy.ref,
        JITR_DEVICE_GROUP: deviceGroup.ref,
        JITR_THING_NAME_SOURCE: thingNameSource.valueAsString,
        JITR_THING_NAME_PATTERN: thingNamePattern.valueAsString,
        JITR_ALLOWED_CA_IDS: allowedCaIds.valueAsString,
        JITR_THING_TYPE: thingType.valueAsString,
        JITR_THING_GROUPS: thingGroups.valueAsString,
        JITR_ON_REJECT: onReject.valueAsString,
        JITR_ON_ROTATION: onRotation.valueAsString,
        JITR_EXCLUSIVE_THING: exclusiveThing.valueAsString,
        JITR_CLOCK_SKEW_SECONDS: clockSkewSeconds.valueAsString,
        JITR_MAX_CONCURRENCY: instancesByConcurrency.findInMap(maxConcurrency.valueAsString, 'Instances'),
        JITR_API_RATES: apiRates.valueAsString,
        JITR_CLAIMS_TABLE: claimsTable.ref,
        // A batch from this queue defers to the bulk lane while it works.
        JITR_FAST_LANE_QUEUE_ARN: fastLaneQueue.queueArn,
        JITR_THING_NAME_TEMPLATE: thingNameTemplate.valueAsString,
        JITR_THING_ATTRIBUTES: thingAttributes.valueAsString,
        JITR_ADMISSION: admission.valueAsString,
        JITR_ALLOW_LIST_TABLE: allowListTable.ref,
        JITR_VERIFIER_FUNCTION: verifierFunction.valueAsString,
        JITR_EVENT_BUS: eventBusName.valueAsString,
      },
    });

    // The role is already a dependency through Fn::GetAtt; an explicit
    // DependsOn as well is what cfn-lint's W3005 warns about.
    (fn.node.defaultChild as cdk.CfnResource).addDeletionOverride('DependsOn');
    // No event is provisioned before the device group carries the policy.
    (fn.node.defaultChild as cdk.CfnResource).addOverride('DependsOn', [attachment.logicalId]);
    skipChecks(fn.node.defaultChild as cdk.CfnResource, {
      CKV_AWS_115:
        "Concurrency is capped where events arrive, the event source mapping's MaximumConcurrency (MaxConcurrency); reserved concurrency would take capacity from the account.",
      CKV_AWS_116:
        "Invoked by the SQS event source mapping; failed records go to the queue's dead-letter queue (redrive), which a function DLQ would never receive.",
      CKV_AWS_117: 'Calls only public AWS APIs (IoT, DynamoDB); no VPC resource to reach.',
      CKV_AWS_173: 'The variables are settings and resource names, no secrets.',
    });
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
    // The fast lane: a batch as soon as a record is there (no window), at
    // most 10 records, the least MaximumConcurrency.
    const fastLane = new lambda.EventSourceMapping(this, 'FastLane', {
      target: fn,
      eventSourceArn: fastLaneQueue.queueArn,
      batchSize: 10,
      reportBatchItemFailures: true,
      maxConcurrency: FAST_LANE_CONCURRENCY,
    });
    // Explicit, as in the SAM template (0 is also AWS's default for SQS).
    (fastLane.node.defaultChild as cdk.CfnResource).addPropertyOverride('MaximumBatchingWindowInSeconds', 0);

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
    new cdk.CfnOutput(this, 'FastLaneQueueUrl', { value: fastLaneQueue.queueUrl });
    new cdk.CfnOutput(this, 'DeadLetterQueueUrl', { value: deadLetterQueue.queueUrl });
    new cdk.CfnOutput(this, 'DevicePolicyName', { value: devicePolicy.ref });
    new cdk.CfnOutput(this, 'DeviceGroupName', { value: deviceGroup.ref });
    new cdk.CfnOutput(this, 'TopicRuleName', { value: rule.ref });
    new cdk.CfnOutput(this, 'ClaimsTableName', { value: claimsTable.ref });
    new cdk.CfnOutput(this, 'AllowListTableName', { value: allowListTable.ref });
  }
}
