import { beforeAll, describe, expect, it } from 'vitest';
import { callsOf, composeProject, find, K8S_TARGETS, k8sObjects, PORTS, RENDER_TIMEOUT_MS, renderDeployment, SERVICES, type ComposeProject, type K8sObject } from './rendered.js';

/*
 * Every service that calls a sibling (a `<SVC>_GRPC_ADDRESS` in its config class) must be given that address, the
 * TLS client settings to reach it (mutual TLS), and each credential its config declares (`…CREDENTIAL`, as a
 * mounted secret file): otherwise it talks to 127.0.0.1 in a container, or every call is refused (authz requires
 * caller credentials in production). The list of calls is derived from the config classes, not written here.
 */

const TLS_CLIENT = ['TLS_CA_PATH', 'TLS_CERT_PATH', 'TLS_KEY_PATH'] as const;
const addressVar = (callee: string) => `${callee.toUpperCase()}_GRPC_ADDRESS`;

function composeProblems(project: ComposeProject): string[] {
  const problems: string[] = [];
  for (const svc of SERVICES) {
    const { callees, credentials } = callsOf(svc);
    const s = project.services[svc];
    if (!s) {
      problems.push(`${svc}: no compose service`);
      continue;
    }
    const env = s.environment ?? {};
    const mounted = new Map((s.secrets ?? []).map((x) => [x.target ?? `/run/secrets/${x.source}`, x.source]));
    for (const callee of callees) {
      const want = `${callee}:${PORTS[callee].grpc}`;
      if (env[addressVar(callee)] !== want) problems.push(`${svc}: ${addressVar(callee)}=${String(env[addressVar(callee)])}, want ${want}`);
      if (!s.depends_on?.[callee]) problems.push(`${svc}: no depends_on ${callee}`);
    }
    if (callees.length) {
      if (env['TLS_ENABLED'] !== 'true') problems.push(`${svc}: TLS_ENABLED is not true for its calls to ${callees.join(', ')}`);
      for (const v of TLS_CLIENT) if (!env[v]) problems.push(`${svc}: ${v} unset (client certificate / CA for mutual TLS)`);
    }
    for (const cred of credentials) {
      const file = env[`${cred}_FILE`];
      if (!file) {
        problems.push(`${svc}: ${cred}_FILE unset`);
        continue;
      }
      const source = mounted.get(file);
      if (!source) problems.push(`${svc}: ${cred}_FILE=${file} is not a mounted Docker secret`);
      else if (!project.secrets[source]?.file) problems.push(`${svc}: secret ${source} (${cred}) is not declared as a file`);
    }
  }
  if (project.services['authz']?.environment?.['AUTHZ_CALLER_AUTH'] === 'off') problems.push('authz: AUTHZ_CALLER_AUTH=off');
  return problems;
}

type EnvVar = { name: string; value?: string };
type Rule = { from?: any[]; to?: any[]; ports?: { port: number }[] };

function k8sProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const common = find(objects, 'ConfigMap', 'soma-common').data ?? {};
  for (const svc of SERVICES) {
    const { callees, credentials } = callsOf(svc);
    const pod = find(objects, 'Deployment', `soma-${svc}`).spec.template.spec;
    const c = pod.containers[0];
    const fromCommon = (c.envFrom ?? []).some((e: any) => e.configMapRef?.name === 'soma-common');
    const env: Record<string, string | undefined> = { ...(fromCommon ? common : {}), ...Object.fromEntries((c.env as EnvVar[]).map((e) => [e.name, e.value])) };
    const egress: Rule[] = find(objects, 'NetworkPolicy', `soma-${svc}`).spec.egress ?? [];
    for (const callee of callees) {
      const want = `soma-${callee}:${PORTS[callee].grpc}`;
      if (env[addressVar(callee)] !== want) problems.push(`${svc}: ${addressVar(callee)}=${String(env[addressVar(callee)])}, want ${want}`);
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === `soma-${callee}`);
      if (!service?.spec.ports.some((p: { port: number }) => p.port === PORTS[callee].grpc)) problems.push(`${svc}: Service soma-${callee} does not serve ${PORTS[callee].grpc}`);
      const out = egress.some((r) => r.to?.some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === `soma-${callee}` && !p.namespaceSelector) && r.ports?.some((p) => p.port === PORTS[callee].grpc));
      if (!out) problems.push(`${svc}: NetworkPolicy soma-${svc} has no egress to soma-${callee}:${PORTS[callee].grpc}`);
      const ingress: Rule[] = find(objects, 'NetworkPolicy', `soma-${callee}`).spec.ingress ?? [];
      const admitted = ingress.some((r) => r.from?.some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/part-of'] === 'soma' && !p.namespaceSelector) && r.ports?.some((p) => p.port === PORTS[callee].grpc));
      if (!admitted) problems.push(`${svc}: NetworkPolicy soma-${callee} does not admit the suite on ${PORTS[callee].grpc}`);
    }
    if (callees.length) {
      if (env['TLS_ENABLED'] !== 'true') problems.push(`${svc}: TLS_ENABLED is not true for its calls to ${callees.join(', ')}`);
      for (const v of TLS_CLIENT) if (!env[v]) problems.push(`${svc}: ${v} unset (client certificate / CA for mutual TLS)`);
    }
    for (const cred of credentials) {
      const file = env[`${cred}_FILE`];
      if (!file) {
        problems.push(`${svc}: ${cred}_FILE unset`);
        continue;
      }
      const mount = (c.volumeMounts as { name: string; mountPath: string }[]).find((m) => file.startsWith(`${m.mountPath}/`));
      const volume = mount && pod.volumes.find((v: { name: string }) => v.name === mount.name);
      if (!mount || !volume?.secret) {
        problems.push(`${svc}: ${cred}_FILE=${file} is not in a mounted Secret`);
        continue;
      }
      const rel = file.slice(mount.mountPath.length + 1);
      const items: { key: string; path: string }[] | undefined = volume.secret.items;
      if (items && !items.some((i) => i.path === rel)) problems.push(`${svc}: Secret ${volume.secret.secretName} mounts no ${rel} (${cred})`);
      // A missing credential must keep the pod from starting, not start it refusing every call.
      if (volume.secret.optional) problems.push(`${svc}: Secret ${volume.secret.secretName} (${cred}) is optional`);
    }
  }
  const authz = find(objects, 'Deployment', 'soma-authz').spec.template.spec.containers[0].env as EnvVar[];
  if (authz.find((e) => e.name === 'AUTHZ_CALLER_AUTH')?.value === 'off' || common['NODE_ENV'] !== 'production') problems.push('authz: caller authentication is not required');
  return problems;
}

beforeAll(() => renderDeployment(), RENDER_TIMEOUT_MS);

describe('service-to-service calls: derived from the config classes', () => {
  it('finds at least the calls and credentials the services are known to make', () => {
    // A floor, so that renaming a variable in a config class cannot make the checks below vacuous.
    expect(callsOf('authz').callees).toContain('auth');
    expect(callsOf('secrets')).toMatchObject({ callees: expect.arrayContaining(['auth', 'authz']), credentials: expect.arrayContaining(['AUTHZ_CREDENTIAL']) });
    expect(callsOf('retention')).toMatchObject({ callees: expect.arrayContaining(['auth']), credentials: expect.arrayContaining(['RETENTION_AUTH_CREDENTIAL']) });
    expect(callsOf('audit').callees).toContain('auth');
  });
});

describe('docker-compose.yaml: every caller has its callee address, mutual TLS and its credential secret', () => {
  it('has no gap', () => {
    expect(composeProblems(composeProject())).toEqual([]);
  });

  it('names the gap when an address, a dependency or a credential secret is missing', () => {
    const broken = composeProject();
    delete broken.services['authz']!.environment!['AUTH_GRPC_ADDRESS'];
    delete broken.services['secrets']!.environment!['AUTHZ_CREDENTIAL_FILE'];
    broken.services['retention']!.secrets = (broken.services['retention']!.secrets ?? []).filter((x) => x.source !== 'retention_auth_credential');
    delete broken.services['audit']!.depends_on!['auth'];
    broken.services['authz']!.environment!['AUTHZ_CALLER_AUTH'] = 'off';
    const problems = composeProblems(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        'authz: AUTH_GRPC_ADDRESS=undefined, want auth:20020',
        'secrets: AUTHZ_CREDENTIAL_FILE unset',
        'retention: RETENTION_AUTH_CREDENTIAL_FILE=/run/secrets/retention_auth_credential is not a mounted Docker secret',
        'audit: no depends_on auth',
        'authz: AUTHZ_CALLER_AUTH=off',
      ]),
    );
    expect(problems).toHaveLength(5);
  });
});

describe.each(K8S_TARGETS)('Kubernetes (%s): every caller has its callee address, egress, mutual TLS and its credential Secret', (target) => {
  it('has no gap', () => {
    expect(k8sProblems(k8sObjects(target))).toEqual([]);
  });

  it('names the gap when an address, an egress rule or a credential file is missing', () => {
    const broken = k8sObjects(target);
    const container = (svc: string) => find(broken, 'Deployment', `soma-${svc}`).spec.template.spec.containers[0];
    container('authz').env = container('authz').env.filter((e: EnvVar) => e.name !== 'AUTH_GRPC_ADDRESS');
    const secretsPod = find(broken, 'Deployment', 'soma-secrets').spec.template.spec;
    secretsPod.volumes.find((v: any) => v.name === 'service-credentials').secret.items = [{ key: 'other', path: 'other' }];
    const retentionPolicy = find(broken, 'NetworkPolicy', 'soma-retention').spec;
    retentionPolicy.egress = retentionPolicy.egress.filter((r: Rule) => !r.to?.some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'soma-auth'));
    container('audit').env = container('audit').env.filter((e: EnvVar) => e.name !== 'TLS_CERT_PATH');
    const problems = k8sProblems(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        'authz: AUTH_GRPC_ADDRESS=undefined, want soma-auth:20020',
        'secrets: Secret soma-secrets-credentials mounts no authz_credential (AUTHZ_CREDENTIAL)',
        'retention: NetworkPolicy soma-retention has no egress to soma-auth:20020',
        'audit: TLS_CERT_PATH unset (client certificate / CA for mutual TLS)',
      ]),
    );
    expect(problems).toHaveLength(4);
  });
});
