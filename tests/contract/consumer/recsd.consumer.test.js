// recsd.consumer.test.js: the consumer side of the contract between the
// streaming platform's API gateway ("streaming-api-gateway") and recsd.
// Each test describes one request the gateway makes and the parts of the
// answer it relies on, runs the gateway's client (recsd_client.js) against
// the Pact mock server, and so records the interaction in the pact file.
//
// Matching is by type and shape (Postel: the gateway tolerates extra
// members and any values of the right kind), exact only where the gateway
// branches on the value (an enum, the status of a problem, the parameter a
// 400 names). Run with node's own test runner, through
// `tests/contract/contract.sh consumer` (which finds the pinned packages).
//
// Where the pact goes: PACT_DIR, by default tests/contract/pacts/, which is
// committed. There is no Pact Broker here, so the repository is how the
// consumer "publishes" its expectations: a change to them shows up as a diff
// of the pact file in review, and the provider verification
// (tests/integration/test_contract.py) checks recsd against the committed
// file; the same test regenerates the pact into a scratch dir and fails if
// the committed one is stale.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { PactV4, MatchersV3 } = require('@pact-foundation/pact');
const { RecsdClient, RecsdError } = require('./recsd_client');

const {
  like,
  eachLike,
  atLeastOneLike,
  constrainedArrayLike,
  integer,
  number,
  boolean,
  string,
  regex,
  uuid,
  datetime,
  fromProviderState,
} = MatchersV3;

const PACT_DIR = process.env.PACT_DIR || path.join(__dirname, '..', 'pacts');

const pact = new PactV4({
  consumer: 'streaming-api-gateway',
  provider: 'recsd',
  dir: PACT_DIR,
  logLevel: process.env.PACT_LOG_LEVEL || 'warn',
});

// Any compact JWS: the gateway forwards the caller's token; the provider
// verification swaps in a valid one for the configured secret.
const BEARER = regex(
  '^Bearer [A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJnYXRld2F5In0.c2lnbmF0dXJlLWV4YW1wbGU',
);
const EXAMPLE_MODEL = '69f278e7-daa1-40f0-92c0-209dd6e8f064';
const ISO_MS = "yyyy-MM-dd'T'HH:mm:ss.SSSX";
const TIMESTAMP = datetime(ISO_MS, '2024-05-01T12:00:00.123Z');
const REQUEST_ID = regex('^[!-~]{1,64}$', '5d0ea92cb2ee7cfb4ea1bd0e25aa69cf');
const JSON_TYPE = regex('^application/json', 'application/json');
const PROBLEM_TYPE = regex('^application/problem\\+json', 'application/problem+json');
const REC_TYPE = regex('^(hybrid|collaborative|content|popularity)$', 'hybrid');
const MODEL_TYPE = regex('^(collaborative|content|hybrid|popularity|ease|item_knn)$', 'hybrid');
const MODEL_STATUS = regex('^(queued|running|succeeded|failed|active|retired)$', 'queued');

// A problem document (RFC 9457) as the gateway passes it on to its caller.
function problem(status, title, param) {
  const body = {
    type: 'about:blank',
    title: string(title),
    status,
    detail: string('what is wrong'),
    instance: string('/api/v1/recs/1'),
  };
  if (param) {
    body['invalid-params'] = atLeastOneLike({
      // The gateway maps the named parameter onto its own error field.
      name: regex(`^${param}$`, param),
      reason: string(`${param} is not valid`),
    });
  }
  return body;
}

test('recommendations for a user with a watch history', async () => {
  await pact
    .addInteraction()
    .given('user 1 has a watch history')
    .given('a trained hybrid model is active')
    .uponReceiving('a request for 3 recommendations for user 1')
    .withRequest('GET', '/api/v1/recs/1', (b) =>
      b.query({ limit: '3' }).headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE, 'X-Request-Id': REQUEST_ID }).jsonBody({
        user_id: string('1'),
        // limit=3: at least one (the user has a history and a model is
        // active) and never more than asked for.
        items: constrainedArrayLike(
          { video_id: string('1036'), score: number(2.14295363) },
          1,
          3,
          3,
        ),
        model_id: string(EXAMPLE_MODEL),
        model_version: integer(1),
        type: REC_TYPE,
        source: regex('^(model|cache|fallback)$', 'model'),
        generated_at: TIMESTAMP,
        request_id: REQUEST_ID,
      }),
    )
    .executeTest(async (mock) => {
      const recs = await new RecsdClient(mock.url, 'header.payload.sig').recommendations('1', {
        limit: 3,
      });
      assert.equal(recs.userId, '1');
      assert.ok(recs.items.length >= 1 && recs.items.length <= 3);
      assert.equal(typeof recs.items[0].videoId, 'string');
      assert.equal(typeof recs.items[0].score, 'number');
      assert.ok(!Number.isNaN(recs.generatedAt.getTime()));
      assert.ok(recs.requestId);
    });
});

test('recommendations with explanations and excluded videos', async () => {
  await pact
    .addInteraction()
    .given('user 1 has a watch history')
    .given('a trained hybrid model is active')
    .uponReceiving('a request for explained recommendations for user 1 without video 1036')
    .withRequest('GET', '/api/v1/recs/1', (b) =>
      b
        .query({ limit: '5', type: 'hybrid', exclude: '1036', explain: 'true' })
        .headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        user_id: string('1'),
        items: constrainedArrayLike(
          // "Because you watched <reason>": a video id the user watched.
          { video_id: string('589'), score: number(1.9129467), reason: string('1240') },
          1,
          5,
          2,
        ),
        model_id: string(EXAMPLE_MODEL),
        type: regex('^hybrid$', 'hybrid'),
        source: regex('^(model|cache)$', 'model'),
        generated_at: TIMESTAMP,
      }),
    )
    .executeTest(async (mock) => {
      const recs = await new RecsdClient(mock.url, 'header.payload.sig').recommendations('1', {
        limit: 5,
        type: 'hybrid',
        exclude: ['1036'],
        explain: true,
      });
      assert.ok(recs.items.every((it) => typeof it.reason === 'string'));
      assert.equal(recs.type, 'hybrid');
    });
});

for (const [param, query, why] of [
  ['limit', { limit: '0' }, 'a limit of 0'],
  ['type', { type: 'deep-learning' }, 'an unknown recommendation type'],
]) {
  test(`400 problem+json for ${why}`, async () => {
    await pact
      .addInteraction()
      .uponReceiving(`a request for recommendations with ${why}`)
      .withRequest('GET', '/api/v1/recs/1', (b) =>
        b.query(query).headers({ Authorization: BEARER }),
      )
      .willRespondWith(400, (b) =>
        b
          .headers({ 'Content-Type': PROBLEM_TYPE, 'X-Request-Id': REQUEST_ID })
          .jsonBody(problem(400, 'Bad Request', param)),
      )
      .executeTest(async (mock) => {
        const client = new RecsdClient(mock.url, 'header.payload.sig');
        await assert.rejects(client.recommendations('1', { [param]: Object.values(query)[0] }), (err) => {
          assert.ok(err instanceof RecsdError);
          assert.equal(err.status, 400);
          assert.equal(err.problem['invalid-params'][0].name, param);
          return true;
        });
      });
  });
}

test('401 problem+json without a token', async () => {
  await pact
    .addInteraction()
    .uponReceiving('a request for recommendations without credentials')
    .withRequest('GET', '/api/v1/recs/1', (b) => b.query({ limit: '3' }))
    .willRespondWith(401, (b) =>
      b
        .headers({
          'Content-Type': PROBLEM_TYPE,
          // The gateway passes the challenge on to its caller.
          'WWW-Authenticate': regex('^Bearer realm="[^"]+"', 'Bearer realm="recsd"'),
        })
        .jsonBody(problem(401, 'Unauthorized')),
    )
    .executeTest(async (mock) => {
      await assert.rejects(new RecsdClient(mock.url, null).recommendations('1', { limit: 3 }), (err) => {
        assert.equal(err.status, 401);
        assert.match(err.headers.get('www-authenticate'), /^Bearer /);
        return true;
      });
    });
});

test('starting a training job', async () => {
  await pact
    .addInteraction()
    .uponReceiving('a request to train a popularity model')
    .withRequest('POST', '/api/v1/recs/train', (b) =>
      b
        .headers({ Authorization: BEARER, 'Content-Type': 'application/json' })
        .jsonBody({ model_type: 'popularity' }),
    )
    .willRespondWith(202, (b) =>
      b
        .headers({
          'Content-Type': JSON_TYPE,
          // Where the gateway's caller polls the job's status.
          Location: regex(
            '^/api/v1/recs/models/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
            `/api/v1/recs/models/${EXAMPLE_MODEL}`,
          ),
        })
        .jsonBody({
          training_id: uuid('0b6b2c1e-5a8e-4d33-9d7a-2f6f3c1a9e10'),
          model_id: uuid(EXAMPLE_MODEL),
          model_ids: atLeastOneLike(uuid(EXAMPLE_MODEL)),
          status: 'queued',
          models: atLeastOneLike({
            model_id: uuid(EXAMPLE_MODEL),
            model_type: regex('^popularity$', 'popularity'),
            version: integer(1),
          }),
        }),
    )
    .executeTest(async (mock) => {
      const job = await new RecsdClient(mock.url, 'header.payload.sig').startTraining('popularity');
      assert.equal(job.status, 'queued');
      assert.equal(job.statusUrl, `/api/v1/recs/models/${job.modelId}`);
    });
});

test('the status of a training job', async () => {
  await pact
    .addInteraction()
    .given('a popularity training job was queued')
    .uponReceiving('a request for the status of a training job')
    .withRequest(
      'GET',
      fromProviderState('/api/v1/recs/models/${modelId}', `/api/v1/recs/models/${EXAMPLE_MODEL}`),
      (b) => b.headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        model_id: fromProviderState('${modelId}', EXAMPLE_MODEL),
        training_id: uuid('0b6b2c1e-5a8e-4d33-9d7a-2f6f3c1a9e10'),
        model_type: 'popularity',
        version: integer(1),
        // The job may be anywhere in its life by the time it is read.
        status: MODEL_STATUS,
        active: boolean(false),
        created_at: TIMESTAMP,
        progress: like({}),
        training: like({
          trigger: regex('^(manual|schedule)$', 'manual'),
          requested_by: string('ml-engineer'),
        }),
      }),
    )
    .executeTest(async (mock) => {
      const st = await new RecsdClient(mock.url, 'header.payload.sig').trainingStatus(EXAMPLE_MODEL);
      assert.equal(st.modelId, EXAMPLE_MODEL);
      assert.equal(st.modelType, 'popularity');
      assert.equal(typeof st.progress, 'object');
    });
});

test('the model list with the active model per type', async () => {
  await pact
    .addInteraction()
    .given('a trained hybrid model is active')
    .uponReceiving('a request for the hybrid models')
    .withRequest('GET', '/api/v1/recs/models', (b) =>
      b.query({ model_type: 'hybrid' }).headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        models: atLeastOneLike({
          model_id: uuid(EXAMPLE_MODEL),
          model_type: regex('^hybrid$', 'hybrid'),
          version: integer(1),
          status: regex('^(queued|running|succeeded|failed|active|retired)$', 'active'),
          active: boolean(true),
          created_at: TIMESTAMP,
        }),
        active: { hybrid: uuid(EXAMPLE_MODEL) },
      }),
    )
    .executeTest(async (mock) => {
      const list = await new RecsdClient(mock.url, 'header.payload.sig').listModels('hybrid');
      assert.ok(list.models.some((m) => m.model_id === list.active.hybrid));
    });
});

test('the active model with its offline metrics', async () => {
  await pact
    .addInteraction()
    .given('a trained hybrid model is active')
    .uponReceiving('a request for the active hybrid model')
    .withRequest(
      'GET',
      fromProviderState('/api/v1/recs/models/${activeModelId}', `/api/v1/recs/models/${EXAMPLE_MODEL}`),
      (b) => b.headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        model_id: fromProviderState('${activeModelId}', EXAMPLE_MODEL),
        model_type: 'hybrid',
        version: integer(1),
        status: 'active',
        active: true,
        finished_at: TIMESTAMP,
        // The dashboard shows the offline evaluation of the serving model.
        metrics: {
          model: like({
            ndcg_at_10: number(0.1269),
            recall_at_10: number(0.0772),
            coverage_at_10: number(0.0405),
          }),
        },
        activations: atLeastOneLike({
          activated_at: TIMESTAMP,
          activated_by: string('ml-engineer'),
          reason: regex('^(gate|manual|rollback)$', 'manual'),
        }),
      }),
    )
    .executeTest(async (mock) => {
      const m = await new RecsdClient(mock.url, 'header.payload.sig').model(EXAMPLE_MODEL);
      assert.equal(m.status, 'active');
      assert.equal(typeof m.metrics.model.ndcg_at_10, 'number');
    });
});

test('activating a model', async () => {
  await pact
    .addInteraction()
    .given('a trained hybrid model is active')
    .uponReceiving('a request to activate the active hybrid model again')
    .withRequest(
      'POST',
      fromProviderState(
        '/api/v1/recs/models/${activeModelId}/activate',
        `/api/v1/recs/models/${EXAMPLE_MODEL}/activate`,
      ),
      (b) => b.headers({ Authorization: BEARER }),
    )
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        model_id: fromProviderState('${activeModelId}', EXAMPLE_MODEL),
        model_type: 'hybrid',
        status: 'active',
        active: true,
        // Already active: nothing changes (activation is idempotent).
        changed: false,
        reason: regex('^(manual|rollback)$', 'manual'),
        activated_by: string('ml-engineer'),
      }),
    )
    .executeTest(async (mock) => {
      const a = await new RecsdClient(mock.url, 'header.payload.sig').activate(EXAMPLE_MODEL);
      assert.equal(a.status, 'active');
      assert.equal(a.changed, false);
    });
});
