// verify.js: provider verification of the pact files in pacts/ (or
// PACT_FILES) against a running recsd. Started by
// tests/integration/test_contract.py, which starts recsd on the MovieLens
// database with authentication required and passes in:
//
//   RECSD_CONTRACT_PROVIDER_URL    recsd's origin, e.g. http://127.0.0.1:41234
//   RECSD_CONTRACT_SERVICE_TOKEN   a JWT with role service (reads)
//   RECSD_CONTRACT_TRAINER_TOKEN   a JWT with role trainer (train, activate)
//   PACT_FILES                     optional: comma-separated pact files
//   RECSD_CONTRACT_STATE_TIMEOUT_S optional: how long a state may take (120)
//
// Provider states are reached through recsd's real API (training a model,
// queueing a job), never by writing to its database. The request filter
// swaps the consumer's example bearer token for a valid one; a request the
// consumer sent without credentials stays without them (the 401 case).
//
// Exit status: 0 if every interaction verified and every state was reached,
// 1 otherwise.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const { Verifier } = require('@pact-foundation/pact');

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`verify.js: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BASE = required('RECSD_CONTRACT_PROVIDER_URL').replace(/\/$/, '');
const SERVICE_TOKEN = required('RECSD_CONTRACT_SERVICE_TOKEN');
const TRAINER_TOKEN = required('RECSD_CONTRACT_TRAINER_TOKEN');
const STATE_TIMEOUT_MS = 1000 * Number(process.env.RECSD_CONTRACT_STATE_TIMEOUT_S || 120);
const PACT_FILES = process.env.PACT_FILES
  ? process.env.PACT_FILES.split(',')
  : fs
      .readdirSync(path.join(__dirname, 'pacts'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => path.join(__dirname, 'pacts', f));

// A state handler that throws makes pact-js answer the verifier 200 anyway
// (and the interaction then fails for a less obvious reason, or, worse,
// passes): remember every such failure and fail the run on it.
const stateErrors = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, urlPath, token, body) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(BASE + urlPath, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await resp.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = text;
  }
  return { status: resp.status, body: doc };
}

async function expectOk(method, urlPath, token, body, want = 200) {
  const r = await api(method, urlPath, token, body);
  if (r.status !== want) {
    throw new Error(`${method} ${urlPath}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  return r.body;
}

async function until(what, fn) {
  const deadline = Date.now() + STATE_TIMEOUT_MS;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${STATE_TIMEOUT_MS} ms: ${what}`);
    await sleep(250);
  }
}

function guarded(name, fn) {
  return {
    setup: async (params) => {
      try {
        return await fn(params);
      } catch (err) {
        stateErrors.push(`${name}: ${err.message}`);
        throw err;
      }
    },
  };
}

// "a trained hybrid model is active": the hybrid model the ranker serves.
// Trained once through POST /train (the first model of a type passes the
// quality gate), then found again by every later interaction.
let hybridTraining = null;
async function activeHybrid() {
  const list = await expectOk('GET', '/api/v1/recs/models?model_type=hybrid', SERVICE_TOKEN);
  let id = list.active.hybrid;
  if (!id) {
    if (!hybridTraining) {
      hybridTraining = (async () => {
        const job = await expectOk('POST', '/api/v1/recs/train', TRAINER_TOKEN,
          { model_type: 'hybrid' }, 202);
        console.log(`state: training hybrid model ${job.model_id}`);
        const started = Date.now();
        const done = await until(`hybrid model ${job.model_id} to finish`, async () => {
          const m = await expectOk('GET', `/api/v1/recs/models/${job.model_id}`, SERVICE_TOKEN);
          return ['queued', 'running'].includes(m.status) ? null : m;
        });
        if (done.status !== 'active') {
          throw new Error(`hybrid model ended ${done.status}: ${done.error || JSON.stringify(done.gate)}`);
        }
        console.log(`state: hybrid model active after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return done.model_id;
      })();
    }
    id = await hybridTraining;
  }
  // Active in the registry is not yet serving: the rankers learn of it by
  // NOTIFY; wait until user 1's hybrid list comes from this model.
  await until(`the ranker to serve hybrid model ${id}`, async () => {
    const r = await api('GET', '/api/v1/recs/1?type=hybrid&limit=1', SERVICE_TOKEN);
    return r.status === 200 && r.body.model_id === id;
  });
  return { activeModelId: id };
}

const stateHandlers = {
  // MovieLens user 1 rated 232 movies; the import is their history. A user
  // without one would get popularity for a personalised type, so that is
  // what this checks.
  'user 1 has a watch history': guarded('user 1 has a watch history', async () => {
    const recs = await expectOk('GET', '/api/v1/recs/1?type=collaborative&limit=1', SERVICE_TOKEN);
    if (recs.type === 'popularity' || recs.items.length === 0) {
      throw new Error(`user 1 looks history-less: ${JSON.stringify(recs)}`);
    }
    return {};
  }),
  'a trained hybrid model is active': guarded('a trained hybrid model is active', activeHybrid),
  'a popularity training job was queued': guarded('a popularity training job was queued', async () => {
    const job = await expectOk('POST', '/api/v1/recs/train', TRAINER_TOKEN,
      { model_type: 'popularity' }, 202);
    return { modelId: job.model_id };
  }),
};

// The gateway forwards the caller's token: a trainer's for the commands
// (POST), a service's for reads.
function requestFilter(req, res, next) {
  if (req.headers.authorization) {
    const token = req.method === 'POST' ? TRAINER_TOKEN : SERVICE_TOKEN;
    req.headers.authorization = `Bearer ${token}`;
  }
  next();
}

async function main() {
  const started = Date.now();
  console.log(`verifying ${PACT_FILES.join(', ')} against ${BASE}`);
  let failed = false;
  try {
    const out = await new Verifier({
      provider: 'recsd',
      providerBaseUrl: BASE,
      pactUrls: PACT_FILES.map((f) => path.resolve(f)),
      stateHandlers,
      requestFilter,
      providerVersion: process.env.RECSD_CONTRACT_PROVIDER_VERSION || 'dev',
      publishVerificationResult: false,
      logLevel: process.env.PACT_LOG_LEVEL || 'warn',
      timeout: STATE_TIMEOUT_MS + 30000,
    }).verifyProvider();
    // pact-core prints each interaction's result itself (the caller
    // checks that every interaction of the pact was verified) and resolves
    // with a summary.
    console.log(`verifier: ${out}`);
  } catch (err) {
    console.error(`verification failed: ${err.message || err}`);
    failed = true;
  }
  if (stateErrors.length) {
    console.error(`provider states not reached:\n  ${stateErrors.join('\n  ')}`);
    failed = true;
  }
  console.log(`verification ${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(failed ? 1 : 0);
}

main();
