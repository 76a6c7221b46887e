#!/usr/bin/env node
// The jitr CDK app: one stack, the same resources as infra/sam/template.yaml.
//   npx cdk deploy --parameters CaCertificateId=<id>   builds the function with cargo-lambda
//   npx cdk synth -c bundle=false                     the template only (offline, no build)
import * as cdk from 'aws-cdk-lib';
import { JitrStack } from '../lib/jitr-stack';

const app = new cdk.App();
if (String(app.node.tryGetContext('bundle')) === 'false') {
  app.node.setContext('aws:cdk:bundling-stacks', []);
}
new JitrStack(app, app.node.tryGetContext('stackName') ?? 'jitr', {
  description: 'jitr: the JITR function behind a topic rule on the CA certificate-registered events',
});
