// The Kubernetes manifests, the compose file and the Dockerfile, checked as
// far as this machine can without a cluster or a Docker daemon: parsed as
// YAML; the objects wired to each other (selectors, the headless Service,
// probes on /ping, the volume at the data directory); every RINGKV_* variable
// a real option (src/config/options.ts); and each node's configuration — the
// ConfigMap's or compose's file plus the environment the pod or container
// gets (Kubernetes' $(VAR) references expanded, the entrypoint's defaults
// applied) — accepted by `ringkv config check --env`, with the first node its
// own seed (so it creates the cluster) and the others seeded with it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_FILE_ENV, SECRET_VALUE_ENV, START_OPTION_KEYS, envOf } from '../../src/config/options.js';
import { TEST_SECRET_TEXT } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';
import { CLI, REPO, run } from '../helpers/processes.js';

const dir = tempDir('ringkv-manifests-');
afterAll(() => dir.remove());

/** Every variable `ringkv start` reads: an option's, a secret's value, the config file's. */
const KNOWN_ENV = new Set([...START_OPTION_KEYS.map(envOf), ...Object.values(SECRET_VALUE_ENV), CONFIG_FILE_ENV]);

/** `ringkv config check --env FILE` with exactly `env`: each option's value and source, from its summary. */
async function configCheck(text: string, env: Record<string, string>, name: string): Promise<Record<string, { value: string; source: string }>> {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  const check = await run(process.execPath, [CLI, 'config', 'check', '--env', file], { env: { PATH: process.env.PATH, ...env } });
  expect(check.code, `${name}: ${check.stderr}`).toBe(0);
  const rows = check.stdout.split('\n').slice(1).filter((l) => l.startsWith('  '));
  return Object.fromEntries(rows.map((l) => {
    const [key, value, source] = l.trim().split(/ {2,}/) as [string, string, string];
    return [key, { value, source }];
  }));
}

interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

/** Kubernetes' expansion of $(VAR) in an env value, from the variables defined before it. */
function expandK8s(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => defined[name] ?? whole);
}

/** The matchLabels a selector names are all on the pod template. */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('deploy/k8s/ringkv.yaml', () => {
  const docs = parseAllDocuments(readFileSync(join(REPO, 'deploy/k8s/ringkv.yaml'), 'utf8'));
  const objects = docs.map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as K8sObject;
  });
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const sts = byKind('StatefulSet')[0]!;
  const pod = sts.spec.template;
  const container = pod.spec.containers[0];
  const configMap = byKind('ConfigMap')[0]!;

  it('has a StatefulSet, a headless and a client Service, a ConfigMap and a PodDisruptionBudget, wired to each other', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
    expect(sts.spec).toMatchObject({ replicas: 3, podManagementPolicy: 'Parallel' });
    expect(selects(sts.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    const services = byKind('Service');
    const headless = services.find((s) => s.metadata.name === sts.spec.serviceName)!;
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    for (const s of services) expect(selects(s.spec.selector, pod.metadata.labels), s.metadata.name).toBe(true);
    const pdb = byKind('PodDisruptionBudget')[0]!;
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    // Probes on /ping, on the port the node listens on.
    const port = container.ports.find((p: { name: string }) => p.name === 'ringkv');
    expect(port.containerPort).toBe(8087);
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect(probe.httpGet).toEqual({ path: '/ping', port: 'ringkv' });
    for (const s of services) expect(s.spec.ports[0].targetPort).toBe('ringkv');
    // Data on the claim; the config file where RINGKV_CONFIG says, from the ConfigMap's key.
    const claim = sts.spec.volumeClaimTemplates[0];
    const mounts = container.volumeMounts as Array<{ name: string; mountPath: string; subPath?: string }>;
    expect(mounts.find((m) => m.name === claim.metadata.name)?.mountPath).toBe('/data');
    const configMount = mounts.find((m) => pod.spec.volumes.some((v: { name: string; configMap?: { name: string } }) => v.name === m.name && v.configMap?.name === configMap.metadata.name))!;
    expect(configMap.data?.[configMount.subPath!]).toBeDefined();
    const env = container.env as Array<{ name: string; value?: string; valueFrom?: any }>;
    expect(env.find((e) => e.name === CONFIG_FILE_ENV)?.value).toBe(configMount.mountPath);
    // The node id from the pod's name (the downward API), the secret from a Secret, never a literal.
    expect(env.find((e) => e.name === 'RINGKV_NODE_ID')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    const secret = env.find((e) => e.name === 'RINGKV_CLUSTER_SECRET');
    expect(secret?.value).toBeUndefined();
    expect(secret?.valueFrom.secretKeyRef.name).toMatch(/./);
    // The image's user.
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
  });

  it('every RINGKV_* variable is a real option, and each pod\'s config (the ConfigMap + its env) passes config check, ringkv-0 its own seed', async () => {
    const env = container.env as Array<{ name: string; value?: string; valueFrom?: any }>;
    for (const e of env.filter((x) => x.name.startsWith('RINGKV_'))) expect(KNOWN_ENV, e.name).toContain(e.name);
    const configFile = configMap.data!['ringkv.yaml']!;
    const namespace = 'ringkv';
    const views = [];
    for (const podName of ['ringkv-0', 'ringkv-1', 'ringkv-2']) {
      const defined: Record<string, string> = {};
      for (const e of env) {
        if (e.value !== undefined) defined[e.name] = expandK8s(e.value, defined);
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') defined[e.name] = podName;
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') defined[e.name] = namespace;
        else if (e.valueFrom?.secretKeyRef) defined[e.name] = TEST_SECRET_TEXT;
        else throw new Error(`env ${e.name}: a source the test does not model`);
      }
      delete defined[CONFIG_FILE_ENV]; // config check is given the file itself
      views.push(await configCheck(configFile, defined, `${podName}.yaml`));
    }
    const headless = sts.spec.serviceName as string;
    views.forEach((v, i) => {
      expect(v.node_id).toEqual({ value: `ringkv-${i}`, source: 'env RINGKV_NODE_ID' });
      expect(v.advertise!.value).toBe(`ringkv-${i}.${headless}.${namespace}.svc.cluster.local:8087`);
      expect(v.listen!.value).toBe('0.0.0.0:8087');
      expect(v.data_dir).toEqual({ value: '/data', source: 'file' });
      expect(v.secret_file!.source).toBe('env RINGKV_CLUSTER_SECRET');
      // Every pod seeds with ringkv-0's advertised name; for ringkv-0 it is its own address: it creates the cluster.
      expect(v.seeds!.value).toBe(views[0]!.advertise!.value);
    });
  });
});

describe('deploy/docker', () => {
  const compose = parse(readFileSync(join(REPO, 'deploy/docker/docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { hostname: string; build: { context: string; dockerfile: string }; environment?: Record<string, string>; ports: string[]; volumes: string[]; secrets: string[]; configs: Array<{ source: string; target: string }> }>;
    secrets: Record<string, { file: string }>;
    configs: Record<string, { file: string }>;
  };
  const composeDir = join(REPO, 'deploy/docker');

  it('docker-compose.yml: three nodes, each with the secret, the shared config, a volume at /data and its own host port', () => {
    const services = Object.entries(compose.services);
    expect(services).toHaveLength(3);
    expect(new Set(services.map(([, s]) => s.ports[0]!.split(':').slice(0, -1).join(':'))).size).toBe(3);
    for (const [name, s] of services) {
      expect(s.hostname, name).toBe(name);
      expect(existsSync(join(composeDir, s.build.context, s.build.dockerfile))).toBe(true);
      expect(s.secrets).toEqual(['cluster_secret']);
      expect(s.configs).toEqual([{ source: 'ringkv_config', target: '/etc/ringkv/ringkv.yaml' }]);
      expect(s.volumes.some((v) => v.endsWith(':/data'))).toBe(true);
      for (const key of Object.keys(s.environment ?? {})) expect(KNOWN_ENV, `${name}: ${key}`).toContain(key);
    }
    expect(existsSync(join(composeDir, compose.configs.ringkv_config!.file))).toBe(true);
  });

  it('each compose node\'s config (ringkv.yaml + its environment + the entrypoint\'s defaults) passes config check, ringkv1 its own seed', async () => {
    const configFile = readFileSync(join(composeDir, compose.configs.ringkv_config!.file), 'utf8');
    const views = [];
    for (const [name, s] of Object.entries(compose.services)) {
      // What deploy/docker/entrypoint.sh exports when neither the file nor the environment sets it (test/deploy/entrypoint.test.ts runs it).
      const defaults = { RINGKV_NODE_ID: s.hostname, RINGKV_LISTEN: '0.0.0.0:8087', RINGKV_ADVERTISE: `${s.hostname}:8087`, RINGKV_DATA_DIR: '/data', RINGKV_CLUSTER_SECRET_FILE: '/run/secrets/cluster_secret' };
      views.push([name, await configCheck(configFile, { ...defaults, ...s.environment }, `compose-${name}.yaml`)] as const);
    }
    const [first] = views[0]!;
    for (const [name, v] of views) {
      expect(v.node_id!.value).toBe(name);
      expect(v.seeds!.value).toBe(`${first}:8087`);
      expect(v.zone!.source).toBe('env RINGKV_ZONE');
    }
    expect(views[0]![1].advertise!.value).toBe(views[0]![1].seeds!.value);
  });

  it('Dockerfile: a build stage and a slim runtime stage as a non-root user, /data, port 8087, a healthcheck and the entrypoint; every COPY source exists and is not ignored', () => {
    const text = readFileSync(join(composeDir, 'Dockerfile'), 'utf8');
    // Instructions with their continuation lines joined.
    const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const froms = lines.filter((l) => l.startsWith('FROM '));
    expect(froms).toHaveLength(2);
    expect(froms[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm AS build$/);
    expect(froms[1]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim$/);
    const runtime = lines.slice(lines.indexOf(froms[1]!));
    expect(runtime).toContain('USER ringkv:ringkv');
    expect(runtime).toContain('VOLUME ["/data"]');
    expect(runtime).toContain('EXPOSE 8087');
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toContain('/opt/ringkv/healthcheck.mjs');
    expect(runtime).toContain('ENTRYPOINT ["/usr/local/bin/ringkv-entrypoint"]');
    const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const sources = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) {
      expect(existsSync(join(REPO, src)), src).toBe(true);
      expect(ignored.filter((p) => p.replace('**/', '') === src.split('/')[0]), src).toEqual([]);
    }
  });
});
