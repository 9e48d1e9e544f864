// validate.mjs: render a kustomization of ops/k8s and check every object
// against the Kubernetes schemas (npm kubernetes-models and
// @kubernetes-models/validate) and against recsd's own rules for its pods.
// Run by validate.sh, which installs the npm packages.
//
//   node validate.mjs --modules DIR/node_modules --repo REPO \
//        --dir ops/k8s/overlays/prod [--reference rendered.yaml] [--dump-env out.json]
//
// Rendering: a small kustomize of the subset ops/k8s uses (resources,
// namespace, images, strategic-merge patches incl. `$patch: delete`), so
// that validation needs no kubectl. With --reference (kubectl kustomize's
// output of the same dir) the two renderings must be equal, object for
// object, which keeps this renderer honest wherever kubectl exists.
//
// Schema validation checks types, required fields and enums; these schemas
// allow unknown fields, so the recsd rules below also check by value the
// fields a typo would silently drop (readOnlyRootFilesystem, probes, ...).
// Exit status 0 when everything passes, 1 with one line per problem.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const need of ["modules", "repo", "dir"]) {
  if (!args[need]) {
    console.error(`usage: node validate.mjs --modules DIR --repo REPO --dir KUSTOMIZATION_DIR [--reference FILE] [--dump-env FILE]`);
    process.exit(2);
  }
}
const require = createRequire(path.join(path.resolve(args.modules), "_.js"));
const yaml = require("js-yaml");

const problems = [];
const problem = (msg) => problems.push(msg);

// --- rendering --------------------------------------------------------------

const SUPPORTED = new Set(["apiVersion", "kind", "resources", "namespace", "images", "patches"]);
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass"]);

function loadDocs(file) {
  return yaml.loadAll(fs.readFileSync(file, "utf8"), null, { filename: file }).filter((d) => d != null);
}

function isObj(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Strategic merge as Kubernetes does it for the fields ops/k8s patches:
// maps merge key by key (null deletes); lists of objects that all carry a
// "name" (containers, env, volumes, ports) merge by name, in kustomize's
// order; other lists are replaced. Merge keys that are not "name" (volumeMounts' mountPath) are
// not needed by any patch here and are replaced whole.
function merge(base, patch) {
  if (!isObj(base) || !isObj(patch)) return structuredClone(patch);
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch") continue;
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = merge(out[k], v);
    else if (Array.isArray(v) && Array.isArray(out[k]) && v.every((x) => isObj(x) && "name" in x) && out[k].every((x) => isObj(x) && "name" in x)) {
      // kustomize's order: the patch's items first (merged with their
      // namesakes), then the base's items the patch does not name.
      const named = new Set(v.map((x) => x.name));
      const list = [];
      for (const item of v) {
        if (item.$patch === "delete") continue;
        const orig = out[k].find((x) => x.name === item.name);
        list.push(orig ? merge(orig, item) : structuredClone(item));
      }
      for (const item of out[k]) if (!named.has(item.name)) list.push(item);
      out[k] = list;
    } else out[k] = structuredClone(v);
  }
  return out;
}

function same(a, b) {
  return a.kind === b.kind && a.metadata?.name === b.metadata?.name;
}

function setImages(obj, images) {
  const spec = obj.spec?.template?.spec ?? obj.spec?.jobTemplate?.spec?.template?.spec;
  if (!spec) return;
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    const [name, tag] = c.image.split(/:(?=[^/]*$)/);
    const rule = images.find((i) => i.name === name);
    if (rule) c.image = `${rule.newName ?? name}:${rule.newTag ?? tag ?? "latest"}`;
  }
}

function render(dir) {
  const kfile = path.join(dir, "kustomization.yaml");
  const k = loadDocs(kfile)[0];
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) problem(`${kfile}: "${key}" is not supported by validate.mjs's renderer: extend it or do without`);
  let objs = [];
  for (const res of k.resources ?? []) {
    const p = path.join(dir, res);
    if (fs.statSync(p).isDirectory()) objs.push(...render(p));
    else objs.push(...loadDocs(p));
  }
  for (const { path: pp, ...rest } of k.patches ?? []) {
    if (!pp || Object.keys(rest).length) {
      problem(`${kfile}: only "patches: - path: FILE" is supported`);
      continue;
    }
    for (const patch of loadDocs(path.join(dir, pp))) {
      const at = objs.findIndex((o) => same(o, patch));
      if (at < 0) problem(`${path.join(dir, pp)}: no ${patch.kind}/${patch.metadata?.name} to patch`);
      else if (patch.$patch === "delete") objs.splice(at, 1);
      else objs[at] = merge(objs[at], patch);
    }
  }
  if (k.namespace) for (const o of objs) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata = { ...o.metadata, namespace: k.namespace };
  if (k.images) for (const o of objs) setImages(o, k.images);
  return objs;
}

const dir = path.resolve(args.dir);
const objs = render(dir);
const key = (o) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

if (args.reference) {
  // kubectl kustomize quotes and orders differently; compare parsed objects.
  const ref = loadDocs(args.reference);
  const canon = (list) => Object.fromEntries(list.map((o) => [key(o), JSON.stringify(sortKeys(o))]));
  const a = canon(objs), b = canon(ref);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!(k in a)) problem(`${k}: in kubectl kustomize's output only`);
    else if (!(k in b)) problem(`${k}: in validate.mjs's rendering only`);
    else if (a[k] !== b[k]) problem(`${k}: validate.mjs and kubectl kustomize render it differently:\n  ours: ${a[k]}\n  kubectl: ${b[k]}`);
  }
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObj(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
}

// --- schemas ------------------------------------------------------------------

for (const o of objs) {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : [null, o.apiVersion];
  const mod = `kubernetes-models/${group ? group + "/" : ""}${version}/${o.kind}`;
  let Model;
  try {
    Model = require(mod)[o.kind];
  } catch (e) {
    problem(`${key(o)}: no schema for ${o.apiVersion} ${o.kind} (${mod}): ${e.message.split("\n")[0]}`);
    continue;
  }
  try {
    new Model(o).validate();
  } catch (e) {
    problem(`${key(o)}: schema: ${e.message}`);
  }
}

// --- recsd's rules ----------------------------------------------------------------

const repo = path.resolve(args.repo);
const configSource = fs.readFileSync(path.join(repo, "lib", "config.c"), "utf8");
// Settings recsd does not read yet, named here ahead of the code that will (none now).
const PROVISIONAL = new Set([]);
const byKind = (kind) => objs.filter((o) => o.kind === kind);
const find = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const labelsMatch = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

// Every RECSD_* variable name set anywhere is one recsd reads.
for (const o of [...byKind("ConfigMap"), ...byKind("Secret")]) {
  for (const name of Object.keys({ ...o.data, ...o.stringData })) {
    if (name.startsWith("RECSD_") && !PROVISIONAL.has(name) && !configSource.includes(`"${name}"`)) problem(`${key(o)}: ${name} is not a variable lib/config.c reads`);
  }
}

const envDump = {};
const pods = [...byKind("Deployment"), ...byKind("Job")];
for (const o of pods) {
  const spec = o.spec.template.spec;
  const podSec = spec.securityContext ?? {};
  if (o.kind === "Deployment" && !labelsMatch(o.spec.selector?.matchLabels, o.spec.template.metadata?.labels)) problem(`${key(o)}: selector does not match the pod labels`);
  if (spec.automountServiceAccountToken !== false) problem(`${key(o)}: automountServiceAccountToken should be false`);
  for (const c of spec.containers) {
    const where = `${key(o)} container ${c.name}`;
    const sec = c.securityContext ?? {};
    if ((sec.runAsNonRoot ?? podSec.runAsNonRoot) !== true) problem(`${where}: runAsNonRoot is not true`);
    if (!((sec.runAsUser ?? podSec.runAsUser) > 0)) problem(`${where}: runAsUser is not a non-root uid`);
    if (sec.readOnlyRootFilesystem !== true) problem(`${where}: readOnlyRootFilesystem is not true`);
    if (sec.allowPrivilegeEscalation !== false) problem(`${where}: allowPrivilegeEscalation is not false`);
    if (!(sec.capabilities?.drop ?? []).includes("ALL")) problem(`${where}: capabilities are not all dropped`);
    for (const kind of ["requests", "limits"]) for (const r of ["cpu", "memory"]) if (c.resources?.[kind]?.[r] == null) problem(`${where}: resources.${kind}.${r} is not set`);
    if (!/:[^/]+$/.test(c.image) || c.image.endsWith(":latest")) problem(`${where}: image ${c.image} has no pinned tag`);

    // The environment the container gets, as the kubelet assembles it.
    const env = {};
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef;
      const refKind = from.configMapRef ? "ConfigMap" : "Secret";
      const target = find(refKind, ref.name);
      if (target) Object.assign(env, target.data ?? {}, target.stringData ?? {});
      else if (refKind === "Secret" && ref.name === "recsd-secrets") env.__external_secret = ref.name;
      else problem(`${where}: envFrom names ${refKind} ${ref.name}, which is not rendered`);
    }
    for (const e of c.env ?? []) {
      if (e.name.startsWith("RECSD_") && !configSource.includes(`"${e.name}"`)) problem(`${where}: ${e.name} is not a variable lib/config.c reads`);
      env[e.name] = e.value;
    }
    envDump[`${key(o)}/${c.name}`] = env;

    // Writable paths on a read-only root: the runtime dir's parent and the
    // artifact cache must be volumes.
    const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath);
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problem(`${where}: volumeMount ${m.name} has no volume`);
    const needs = o.kind === "Deployment" ? ["RECSD_RUNTIME_DIR", "RECSD_ARTIFACT_CACHE_DIR"] : [];
    for (const v of needs) {
      if (!env[v]) problem(`${where}: ${v} is not set`);
      else if (!mounts.some((m) => env[v].startsWith(m.replace(/\/?$/, "/")))) problem(`${where}: ${v}=${env[v]} is not on a mounted volume (read-only root)`);
    }
    if (env.RECSD_RUNTIME_DIR && mounts.includes(env.RECSD_RUNTIME_DIR)) problem(`${where}: RECSD_RUNTIME_DIR must be a subdirectory of the volume (recsd chmods it 0700)`);

    if (o.kind !== "Deployment") continue;
    if (c.livenessProbe?.httpGet?.path !== "/health") problem(`${where}: livenessProbe is not GET /health`);
    if (c.readinessProbe?.httpGet?.path !== "/health/ready") problem(`${where}: readinessProbe is not GET /health/ready`);
    const drain = Number(env.RECSD_DRAIN_DELAY_MS ?? 0), grace = Number(env.RECSD_SHUTDOWN_GRACE_MS ?? 20000);
    const tgps = spec.terminationGracePeriodSeconds ?? 30;
    if (!(tgps * 1000 > drain + grace)) problem(`${where}: terminationGracePeriodSeconds ${tgps} s is not above RECSD_DRAIN_DELAY_MS + RECSD_SHUTDOWN_GRACE_MS (${drain + grace} ms)`);
    const actors = (env.RECSD_ACTORS ?? "").split(",").map((a) => a.split(":")[0]);
    const component = o.spec.template.metadata.labels["app.kubernetes.io/component"];
    const want = { api: ["http-gateway", "ranker", "event-ingestor", "publisher"], worker: ["trainer", "publisher"] }[component];
    if (!want) problem(`${where}: unknown component ${component}`);
    else for (const a of want) if (!actors.includes(a)) problem(`${where}: RECSD_ACTORS (${env.RECSD_ACTORS}) lacks ${a}`);
    if (!actors.includes("http-gateway")) problem(`${where}: no http-gateway: nothing would serve the probes and /metrics`);
  }
}

// Services, PDBs and the HPA point at what exists.
for (const s of byKind("Service")) {
  const hit = byKind("Deployment").filter((d) => labelsMatch(s.spec.selector, d.spec.template.metadata.labels));
  if (hit.length !== 1 || hit[0].spec.template.metadata.labels["app.kubernetes.io/component"] !== "api") problem(`${key(s)}: selects ${hit.map(key).join(", ") || "nothing"}, not exactly the API`);
  for (const p of s.spec.ports) if (!hit[0]?.spec.template.spec.containers.some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort))) problem(`${key(s)}: targetPort ${p.targetPort} is no container port`);
}
for (const p of byKind("PodDisruptionBudget")) {
  const hit = byKind("Deployment").filter((d) => labelsMatch(p.spec.selector?.matchLabels, d.spec.template.metadata.labels));
  if (hit.length !== 1) problem(`${key(p)}: selects ${hit.length} Deployments`);
  const replicas = hit[0]?.spec.replicas ?? 1;
  if (typeof p.spec.minAvailable === "number" && p.spec.minAvailable >= replicas) problem(`${key(p)}: minAvailable ${p.spec.minAvailable} with ${replicas} replicas blocks every eviction`);
}
const adapter = fs.readFileSync(path.join(repo, "ops", "prometheus", "adapter-rules.yml"), "utf8");
const recording = fs.readFileSync(path.join(repo, "ops", "prometheus", "rules", "recording.yml"), "utf8");
for (const h of byKind("HorizontalPodAutoscaler")) {
  const t = h.spec.scaleTargetRef;
  if (!find(t.kind, t.name)) problem(`${key(h)}: scaleTargetRef ${t.kind}/${t.name} is not rendered`);
  const kinds = h.spec.metrics.map((m) => m.type);
  if (!kinds.includes("Resource") || !kinds.includes("Pods")) problem(`${key(h)}: needs a CPU (Resource) and a latency (Pods) metric`);
  for (const m of h.spec.metrics.filter((m) => m.type === "Pods")) {
    const name = m.pods.metric.name;
    const as = adapter.match(/as: "([^"]+)"/)?.[1];
    const series = adapter.match(/matches: "\^([^$"]+)\$"/)?.[1];
    if (name !== as) problem(`${key(h)}: pods metric ${name} is not what adapter-rules.yml serves (${as})`);
    if (!series || !recording.includes(`record: ${series}\n`)) problem(`${key(h)}: the adapter's series ${series} is no recording rule in recording.yml`);
  }
  const target = find(t.kind, t.name);
  if (target && h.spec.minReplicas > (target.spec.replicas ?? 1) && target.spec.replicas != null) problem(`${key(h)}: minReplicas ${h.spec.minReplicas} above the Deployment's replicas ${target.spec.replicas}`);
}

if (args["dump-env"]) fs.writeFileSync(args["dump-env"], JSON.stringify(envDump, null, 1));

const rel = path.relative(repo, dir);
if (problems.length) {
  for (const p of problems) console.log(`FAIL ${rel}: ${p}`);
  process.exit(1);
}
console.log(`ok ${rel}: ${objs.length} objects (${[...new Set(objs.map((o) => o.kind))].join(", ")}) valid` + (args.reference ? ", identical to kubectl kustomize" : ""));
