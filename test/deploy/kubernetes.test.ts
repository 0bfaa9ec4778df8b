import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { envNamesOf, find, K8S_SCHEMA_LOCATION, K8S_TARGETS, k8sObjects, KUBECONFORM, PORTS, PUBLIC, RENDER_TIMEOUT_MS, renderDeployment, SECRET_LIKE, secretNamesOf, SERVICES, type K8sObject } from './rendered.js';

const run = promisify(execFile);
beforeAll(() => renderDeployment(), RENDER_TIMEOUT_MS);

describe('the Kubernetes schema check', () => {
  // The renderings pass kubeconform; this proves the check is not vacuous: the same schemas refuse a
  // misspelt field, a wrong type and a missing required field.
  it('refuses a misspelt field, a wrong type and a missing required field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'soma-k8s-'));
    const file = join(dir, 'bad.yaml');
    const deployment = (name: string, spec: string) => `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
    const pod = (container: string) => `{selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [${container}]}}}`;
    writeFileSync(
      file,
      [
        deployment('good', pod('{name: c, image: "soma:1", securityContext: {readOnlyRootFilesystem: true}}')),
        deployment('misspelt', pod('{name: c, image: "soma:1", securityContext: {readOnlyRootFilesytem: true}}')),
        deployment('wrong-type', pod('{name: c, image: "soma:1", ports: [{containerPort: "http"}]}')),
        deployment('no-selector', '{template: {spec: {containers: [{name: c, image: "soma:1"}]}}}'),
      ].join('---\n'),
    );
    const result = await run(KUBECONFORM, ['-strict', '-summary', '-output', 'json', '-schema-location', K8S_SCHEMA_LOCATION, file]).catch((e: { stdout: string; code: number }) => e);
    const report = JSON.parse(result.stdout) as { resources: { name: string; status: string; msg: string }[]; summary: { valid: number; invalid: number } };
    const status = Object.fromEntries(report.resources.map((r) => [r.name, r.status]));
    expect(report.summary).toMatchObject({ valid: 1, invalid: 3 });
    expect(status).toEqual({ misspelt: 'statusInvalid', 'wrong-type': 'statusInvalid', 'no-selector': 'statusInvalid' });
    expect(report.resources.find((r) => r.name === 'misspelt')?.msg).toContain('readOnlyRootFilesytem');
  });
});

// Loose shapes: kubeconform has already checked every object against the Kubernetes schemas.
type Peer = { podSelector?: any; namespaceSelector?: any; ipBlock?: any };
type Rule = { from?: Peer[]; to?: Peer[]; ports?: { port: number; protocol?: string }[] };

describe.each(K8S_TARGETS)('Kubernetes (%s)', (target) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = k8sObjects(target);
  });

  it('has a Deployment, Service, HPA, PDB, NetworkPolicy and ServiceAccount per service, all in the soma namespace', () => {
    for (const svc of SERVICES) {
      for (const kind of ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', 'ServiceAccount']) {
        expect(find(objects, kind, `soma-${svc}`).metadata.namespace, `${kind}/soma-${svc}`).toBe('soma');
      }
    }
    const ns = find(objects, 'Namespace', 'soma');
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('hardens every pod: non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    for (const svc of SERVICES) {
      const pod = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec;
      expect(pod.automountServiceAccountToken, svc).toBe(false);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.hostNetwork ?? false).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext, svc).toMatchObject({
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.securityContext.capabilities.add ?? []).toEqual([]);
        expect(c.args, svc).toEqual([svc]);
        expect(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.cpu && c.resources.limits.memory, svc).toBeTruthy();
      }
    }
  });

  it('probes readiness on /readyz and liveness on /healthz over HTTPS on the HTTP port', () => {
    for (const svc of SERVICES) {
      const c = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec.containers[0];
      expect(c.readinessProbe.httpGet, svc).toMatchObject({ path: '/readyz', port: 'http', scheme: 'HTTPS' });
      expect(c.livenessProbe.httpGet, svc).toMatchObject({ path: '/healthz', port: 'http', scheme: 'HTTPS' });
      const ports = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
      expect(ports, svc).toEqual({ grpc: PORTS[svc].grpc, http: PORTS[svc].http });
    }
  });

  it('reads credentials only from mounted Kubernetes Secrets (X_FILE), never from literal values or env secretKeyRef', () => {
    for (const svc of SERVICES) {
      const pod = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec;
      const c = pod.containers[0];
      const env: { name: string; value?: string; valueFrom?: any }[] = c.env;
      const secretMounts = c.volumeMounts
        .filter((m: { name: string }) => pod.volumes.find((v: any) => v.name === m.name)?.secret)
        .map((m: { mountPath: string; readOnly?: boolean }) => {
          expect(m.readOnly, `${svc} ${m.mountPath}`).toBe(true);
          return m.mountPath as string;
        });
      for (const name of secretNamesOf(svc)) expect(env.find((e) => e.name === name), `${svc} sets ${name} directly`).toBeUndefined();
      for (const e of env) {
        expect(e.valueFrom?.secretKeyRef, `${svc} ${e.name}`).toBeUndefined();
        if (!SECRET_LIKE.test(e.name)) continue;
        expect(e.name).toMatch(/_FILE$/);
        expect(secretMounts.some((m: string) => e.value?.startsWith(`${m}/`)), `${svc}: ${e.name} points into a mounted Secret`).toBe(true);
      }
      const keyPath = env.find((e) => e.name === 'TLS_KEY_PATH')?.value;
      expect(secretMounts.some((m: string) => keyPath?.startsWith(`${m}/`)), `${svc} TLS key from a Secret`).toBe(true);
      for (const v of pod.volumes.filter((v: any) => v.secret)) expect(v.secret.defaultMode, `${svc} ${v.name}`).toBe(0o400);
    }
    const common = find(objects, 'ConfigMap', 'soma-common');
    for (const key of Object.keys(common.data ?? {})) expect(SECRET_LIKE.test(key), `ConfigMap carries ${key}`).toBe(false);
    expect(common.data?.['TLS_ENABLED']).toBe('true');
  });

  it('names only environment variables the services read', () => {
    const common = Object.keys(find(objects, 'ConfigMap', 'soma-common').data ?? {});
    const anyService = new Set(SERVICES.flatMap((s) => [...envNamesOf(s)]));
    expect(common.filter((k) => !anyService.has(k)), 'ConfigMap keys no service reads').toEqual([]);
    for (const svc of SERVICES) {
      const env = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
      const known = envNamesOf(svc);
      expect(env.filter((k: string) => !known.has(k)), `${svc} sets variables its config does not read`).toEqual([]);
    }
  });

  it('denies all traffic by default and allows only DNS to every pod', () => {
    const deny = find(objects, 'NetworkPolicy', 'default-deny-all').spec;
    expect(deny.podSelector).toEqual({});
    expect(deny.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(deny.ingress ?? []).toEqual([]);
    expect(deny.egress ?? []).toEqual([]);
    const dns = find(objects, 'NetworkPolicy', 'allow-dns').spec;
    expect(dns.egress.flatMap((r: Rule) => r.ports!.map((p) => p.port))).toEqual([53, 53]);
  });

  it('lets only the suite itself reach gRPC, and only the ingress controller reach the public entry points', () => {
    for (const svc of SERVICES) {
      const policy = find(objects, 'NetworkPolicy', `soma-${svc}`).spec;
      expect(policy.podSelector.matchLabels['app.kubernetes.io/name']).toBe(`soma-${svc}`);
      expect(policy.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
      for (const rule of [...(policy.ingress as Rule[]), ...(policy.egress as Rule[])]) {
        // No allow-all rule: every rule names its peers and its ports; no CIDR opens the pod to the world.
        expect((rule.from ?? rule.to ?? []).length, svc).toBeGreaterThan(0);
        expect((rule.ports ?? []).length, svc).toBeGreaterThan(0);
        for (const peer of rule.from ?? rule.to ?? []) expect(peer.ipBlock, svc).toBeUndefined();
      }
      for (const rule of policy.ingress as Rule[]) {
        const ports = rule.ports!.map((p) => p.port);
        const peers = rule.from!;
        const fromOutside = peers.some((p) => p.namespaceSelector);
        if (ports.includes(PORTS[svc].grpc)) {
          // gRPC: pods of this namespace that belong to the suite, nothing from another namespace.
          expect(fromOutside, `${svc} gRPC reachable from another namespace`).toBe(false);
          for (const p of peers) expect(p.podSelector.matchLabels['app.kubernetes.io/part-of']).toBe('soma');
        }
        const fromIngress = peers.some((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx');
        if (fromIngress) expect(PUBLIC.has(svc) && ports.every((p) => p === PORTS[svc].http), `${svc} reachable through the ingress`).toBe(true);
        if (fromOutside && !fromIngress) {
          // Prometheus only, and only the HTTP port (/metrics).
          expect(peers.every((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring'), svc).toBe(true);
          expect(ports).toEqual([PORTS[svc].http]);
        }
      }
      const viaIngress = (policy.ingress as Rule[]).some((r) => r.from!.some((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx'));
      expect(viaIngress, svc).toBe(PUBLIC.has(svc));
    }
  });

  it('routes the Ingress only to the public entry points, over their HTTP port, with TLS', () => {
    const ingress = find(objects, 'Ingress', 'soma-public').spec;
    expect(ingress.tls.length).toBeGreaterThan(0);
    const backends = ingress.rules.flatMap((r: any) => r.http.paths.map((p: any) => p.backend.service));
    expect(backends.map((b: any) => b.name).sort()).toEqual([...PUBLIC].map((s) => `soma-${s}`).sort());
    for (const b of backends) expect(b.port.name).toBe('http');
    expect(objects.filter((o) => o.kind === 'Service').every((s) => (s.spec.type ?? 'ClusterIP') === 'ClusterIP')).toBe(true);
  });

  it('points Service, HPA and PDB at the right pods', () => {
    for (const svc of SERVICES) {
      const deployment = find(objects, 'Deployment', `soma-${svc}`);
      const podLabels = deployment.spec.template.metadata.labels;
      expect(podLabels).toMatchObject(deployment.spec.selector.matchLabels);
      expect(podLabels).toMatchObject(find(objects, 'Service', `soma-${svc}`).spec.selector);
      expect(podLabels).toMatchObject(find(objects, 'PodDisruptionBudget', `soma-${svc}`).spec.selector.matchLabels);
      const hpa = find(objects, 'HorizontalPodAutoscaler', `soma-${svc}`).spec;
      expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: `soma-${svc}` });
      expect(hpa.minReplicas).toBeLessThanOrEqual(hpa.maxReplicas);
      // With one replica a PDB of maxUnavailable 1 would allow an outage; production keeps at least three.
      if (target === 'production') expect(hpa.minReplicas).toBeGreaterThanOrEqual(3);
    }
  });

  it('uses the suite image (pinned by digest in production), never :latest', () => {
    for (const svc of SERVICES) {
      const image: string = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec.containers[0].image;
      expect(image).not.toMatch(/:latest$/);
      expect(image).toContain('soma-security-suite');
      if (target === 'production') expect(image).toMatch(/@sha256:[0-9a-f]{64}$/);
    }
  });
});
