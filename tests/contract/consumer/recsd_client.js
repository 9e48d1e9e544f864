// recsd_client.js: the part of the streaming platform's API gateway that
// talks to recsd, reduced to what the gateway relies on. The consumer tests
// (recsd.consumer.test.js) run this code against the Pact mock server, so
// the contract records what this client really sends and reads, not a
// hand-written wish list.
//
// The gateway forwards the caller's bearer token (a user or service JWT for
// recommendations, an ML engineer's trainer token for training and
// activation); it never mints tokens itself.
'use strict';

class RecsdError extends Error {
  constructor(status, problem) {
    super(`recsd answered ${status}: ${problem && problem.detail}`);
    this.status = status;
    this.problem = problem; // the RFC 9457 document, or null
  }
}

class RecsdClient {
  // baseUrl: recsd's origin, e.g. http://127.0.0.1:8080; token: the bearer
  // token to forward, or null (the gateway then passes the 401 through).
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    const type = resp.headers.get('content-type') || '';
    const doc = text && /json/.test(type) ? JSON.parse(text) : null;
    if (!resp.ok) {
      const err = new RecsdError(resp.status, type.startsWith('application/problem+json') ? doc : null);
      err.headers = resp.headers;
      throw err;
    }
    return { status: resp.status, headers: resp.headers, body: doc };
  }

  // The "You may also like" row: { userId, items: [{ videoId, score, reason }],
  // modelId, type, source, generatedAt, requestId }.
  async recommendations(userId, { limit, type, exclude, explain } = {}) {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set('limit', String(limit));
    if (type !== undefined) query.set('type', type);
    if (exclude && exclude.length) query.set('exclude', exclude.join(','));
    if (explain) query.set('explain', 'true');
    const qs = query.toString();
    const { headers, body } = await this.request(
      'GET',
      `/api/v1/recs/${encodeURIComponent(userId)}${qs ? `?${qs}` : ''}`,
    );
    return {
      userId: body.user_id,
      items: body.items.map((it) => ({ videoId: it.video_id, score: it.score, reason: it.reason })),
      modelId: body.model_id,
      type: body.type,
      source: body.source,
      generatedAt: new Date(body.generated_at),
      requestId: headers.get('x-request-id'),
    };
  }

  // Queues a training run; returns { trainingId, modelId, statusUrl }.
  async startTraining(modelType) {
    const { headers, body } = await this.request('POST', '/api/v1/recs/train', {
      model_type: modelType,
    });
    return {
      trainingId: body.training_id,
      modelId: body.model_id,
      modelIds: body.model_ids,
      status: body.status,
      statusUrl: headers.get('location'),
    };
  }

  // The status of one training job (= one model version): what the ML
  // dashboard polls.
  async trainingStatus(modelId) {
    const { body } = await this.request('GET', `/api/v1/recs/models/${modelId}`);
    return {
      modelId: body.model_id,
      modelType: body.model_type,
      version: body.version,
      status: body.status,
      active: body.active,
      progress: body.progress,
      requestedBy: body.training.requested_by,
      createdAt: new Date(body.created_at),
    };
  }

  async model(modelId) {
    const { body } = await this.request('GET', `/api/v1/recs/models/${modelId}`);
    return body;
  }

  async listModels(modelType) {
    const qs = modelType ? `?model_type=${encodeURIComponent(modelType)}` : '';
    const { body } = await this.request('GET', `/api/v1/recs/models${qs}`);
    return { models: body.models, active: body.active };
  }

  async activate(modelId) {
    const { body } = await this.request('POST', `/api/v1/recs/models/${modelId}/activate`);
    return body;
  }
}

module.exports = { RecsdClient, RecsdError };
